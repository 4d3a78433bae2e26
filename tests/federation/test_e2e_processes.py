"""End to end with real registry processes under gunicorn on loopback: a hub, two members and
a fourth registry whose CKAN Action API (`/api/3`) the hub harvests, beside a DCAT-AP Turtle
file. Publish on a member and find it on the hub; verify the chain offline (`ndr verify`) and
in Chromium (the hub's page, "Verify in your browser", every step passes); harvest both log-less
sources, change and withdraw at the sources and harvest again (created / updated / withdrawn),
every harvested entry labelled "harvested, provenance not verified"; take a member offline and
bring it back; fork a member and watch the hub refuse it with evidence.

Also prints the lag from a member's publish to searchable on the hub (p50/p99): a figure for
docs/federation.md, not an assertion.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from anchoring.auditor.cosignature import CosignatureVerifier, verify_cosignatures
from tests.browser.conftest import browser  # noqa: F401 - the shared Chromium
from tests.federation.test_harvest import DCAT_TTL, Files

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], Any], what: str, deadline: float = 60.0) -> Any:
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def http(method: str, url: str, body: Any = None, token: str | None = None
         ) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    except (urllib.error.URLError, OSError):
        return 0, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


@dataclass
class Node:
    name: str
    origin: str
    var: Path
    database_url: str
    port: int = field(default_factory=_free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(REPO), "NDR_VAR_DIR": str(self.var),
                "DATABASE_URL": self.database_url, "NDR_LOG_ORIGIN": self.origin,
                "NDR_BIND": f"127.0.0.1:{self.port}", "NDR_WORKERS": "2", "NDR_THREADS": "4",
                "NDR_CHECKPOINT_INTERVAL": "0.2", "NDR_ANCHOR_BACKEND": "local",
                "NDR_ANCHOR_EPOCH_SECONDS": "1", "NDR_MIRROR_INTERVAL": "0.3",
                "NDR_WITNESS_INTERVAL": "0.3", "NDR_PUBLIC_URL": self.url,
                "NDR_ANCHOR_JOURNAL_KEY_FILE": str(self.var / "journal.key"),
                **self.extra_env}

    def ndr(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-c", "from registry.cli import main; "
                               "raise SystemExit(main())", *args], env=self.env(), cwd=REPO,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"ndr {' '.join(args)}: {done.stderr}"
        return done.stdout

    def ndr_python(self, code: str) -> None:
        done = subprocess.run([sys.executable, "-c", code], env=self.env(), cwd=REPO,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

    def start(self) -> None:
        # Build the app once first: it creates the session secret, which two gunicorn workers
        # booting together may otherwise race to create (registry/web/security.py).
        self.ndr_python("from app import create_app; create_app(background=False)")
        log = open(self.var / "gunicorn.log", "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(REPO / "deploy" /
                                                               "gunicorn.conf.py"),
             "app:create_app()"], env=self.env(), cwd=REPO, stdout=log, stderr=log,
            start_new_session=True)
        wait_for(lambda: http("GET", self.url + "/healthz")[0] == 200, f"{self.name} up")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None


@pytest.fixture
def databases(request: pytest.FixtureRequest, database_url: str, tmp_path: Path
              ) -> Iterator[Callable[[str], str]]:
    """Fresh database URLs of the parametrised kind (SQLite files or PostgreSQL databases)."""
    from tests.conftest import create_postgres_database, drop_postgres_database

    made: list[str] = []

    def make(name: str) -> str:
        if database_url.startswith("sqlite"):
            return f"sqlite:///{tmp_path / (name + '.db')}"
        url, db_name = create_postgres_database(request.getfixturevalue("postgres_admin_dsn"))
        made.append(db_name)
        return url

    yield make
    for name in made:
        drop_postgres_database(request.getfixturevalue("postgres_admin_dsn"), name)


def copy_database(url: str, new: str, request: pytest.FixtureRequest) -> str:
    """A copy of a stopped registry's database (its state "from a backup")."""
    if url.startswith("sqlite"):
        source = Path(url.removeprefix("sqlite:///"))
        target = source.with_name(new + ".db")
        for suffix in ("", "-wal", "-shm"):
            if Path(str(source) + suffix).exists():
                shutil.copy(str(source) + suffix, str(target) + suffix)
        return f"sqlite:///{target}"
    import psycopg

    admin = request.getfixturevalue("postgres_admin_dsn")
    name = url.rsplit("/", 1)[1]
    copy = f"{name}_{new}"[:60]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{name}"')
    request.addfinalizer(lambda: _drop(admin, copy))
    return url.rsplit("/", 1)[0] + "/" + copy


def _drop(admin: str, name: str) -> None:
    from tests.conftest import drop_postgres_database

    drop_postgres_database(admin, name)


def _title(i: int, tag: str) -> dict[str, Any]:
    from tests.catalogue.helpers import metadata

    return metadata(title={"zh": f"{tag} 数据集 {i}", "en": f"{tag} dataset {i}"})


def test_hub_and_two_members(databases, tmp_path: Path, request: pytest.FixtureRequest,
                             browser) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    hub = Node("hub", "hub.example.gov.cn/log", tmp_path / "hub", databases("hub"))
    a = Node("a", "province-a.example.gov.cn/log", tmp_path / "a", databases("a"))
    b = Node("b", "province-b.example.gov.cn/log", tmp_path / "b", databases("b"))
    # A registry that is no member: the hub reads its CKAN Action API (no log, no proofs).
    # One worker: a worker that does not index answers searches (and so package_search)
    # without the last NDR_SEARCH_MAX_LAG_MS of changes; with two, the test could see the
    # source changed in one worker while the harvest then reads the other.
    ckan = Node("ckan", "city.example.gov.cn/log", tmp_path / "ckan", databases("ckan"),
                extra_env={"NDR_WORKERS": "1"})
    nodes = [hub, a, b, ckan]
    files = Files()  # serves the DCAT-AP Turtle file
    files.files["catalog.ttl"] = (DCAT_TTL, "text/turtle")
    try:
        for node in nodes:
            node.var.mkdir()
            node.ndr("init")
        witness_key = hub.ndr("federation", "status").split("witness key: ")[1].split()[0]
        for member in (a, b):
            key = member.ndr("log", "key").strip()
            hub.ndr("federation", "add", member.origin, key, "--url", member.url)
            member.extra_env["NDR_WITNESSES"] = f"{hub.url}/witness {witness_key}"
            member.ndr("org", "create", "dept", "--name-en", f"{member.name} department")
        ckan.ndr("org", "create", "dept", "--name-en", "city department")
        tokens = {m.name: m.ndr("token", "create", "--org", "dept").strip()
                  for m in (a, b, ckan)}
        for node in nodes:
            node.start()

        # Publish on a member; find it on the hub.
        lags = []
        for i in range(8):
            started = time.monotonic()
            status, _ = http("POST", a.url + "/api/v1/datasets", {"metadata": _title(i, "Alpha")},
                             tokens["a"])
            assert status == 201
            wait_for(lambda i=i: _hub_titles(hub, f"Alpha dataset {i}"), f"Alpha {i} on hub")
            lags.append(time.monotonic() - started)
        status, _ = http("POST", b.url + "/api/v1/datasets", {"metadata": _title(0, "Beta")},
                         tokens["b"])
        assert status == 201
        wait_for(lambda: _hub_titles(hub, "Beta dataset 0"), "Beta on hub")
        print(f"\nlag member publish -> searchable on hub over {len(lags)} publishes: "
              f"p50 {statistics.median(lags):.2f} s, max {max(lags):.2f} s")

        # The member serves its checkpoint with the hub's cosignature.
        def cosigned() -> bool:
            note = urllib.request.urlopen(a.url + "/log/checkpoint").read().decode()
            try:
                return bool(verify_cosignatures(note, [CosignatureVerifier.from_vkey(
                    witness_key)]))
            except ValueError:
                return False

        wait_for(cosigned, "cosigned checkpoint on member a")

        # Verify the whole chain offline, with the keys from each party.
        item = _hub_titles(hub, "Alpha dataset 3")[0]
        bundle = wait_for(lambda: _bundle(hub, item["id"]), "federated bundle")
        path = tmp_path / "bundle.json"
        path.write_text(json.dumps(bundle))
        verified = subprocess.run(
            [sys.executable, "-m", "anchoring.auditor", "verify", str(path), "--key",
             hub.ndr("log", "key").strip(), "--member-key", a.ndr("log", "key").strip(),
             "--witness-key", witness_key], capture_output=True, text=True, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)})
        assert verified.returncode == 0, verified.stdout + verified.stderr

        # ... and in a browser: the hub's page for the federated entry, every step passes.
        _verify_in_chromium(browser, f"{hub.url}/datasets/{item['id']}?lang=en")

        _harvest(hub, ckan, tokens["ckan"], files)

        # Member b goes offline: the hub keeps serving its entries, then b comes back.
        b.stop()
        assert http("GET", hub.url + "/healthz")[0] == 200
        assert _hub_titles(hub, "Beta dataset 0")
        b.start()
        assert http("POST", b.url + "/api/v1/datasets", {"metadata": _title(1, "Beta")},
                    tokens["b"])[0] == 201
        wait_for(lambda: _hub_titles(hub, "Beta dataset 1"), "Beta 1 on hub after restart")

        # Fork member a: restore an older copy of its database and publish something else.
        witnessed = _member(hub, a.origin)["witnessed_size"]
        a.stop()
        backup = copy_database(a.database_url, "backup", request)
        a.start()
        assert http("POST", a.url + "/api/v1/datasets", {"metadata": _title(99, "Alpha")},
                    tokens["a"])[0] == 201
        wait_for(lambda: _member(hub, a.origin)["witnessed_size"] > witnessed, "a grows")
        a.stop()
        a.database_url = backup  # the forked history: same past, then different entries
        a.start()
        for i in range(4):
            assert http("POST", a.url + "/api/v1/datasets",
                        {"metadata": _title(i, "Forked")}, tokens["a"])[0] == 201
        evidence = wait_for(lambda: http("GET", hub.url + "/api/v1/federation/evidence")[1]
                            ["evidence"], "fork evidence on the hub")
        assert evidence[0]["origin"] == a.origin
        assert _member(hub, a.origin)["alarm"]
        metrics = http("GET", hub.url + "/metrics")[1]
        assert f'ndr_federation_alarm{{origin="{a.origin}"}} 1' in metrics
        assert a.origin in http("GET", hub.url + "/readyz")[1]["federation_alarms"]
        assert not _hub_titles(hub, "Forked dataset 0")  # never mirrored
        path = tmp_path / "evidence.json"
        path.write_text(json.dumps(evidence[0]["evidence"]))
        checked = subprocess.run(
            [sys.executable, "-m", "anchoring.auditor", "verify-evidence", str(path), "--key",
             a.ndr("log", "key").strip()], capture_output=True, text=True, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)})
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        files.stop()
        for node in nodes:
            node.stop()


def _hub_titles(hub: Node, text: str) -> list[dict[str, Any]]:
    status, body = http("GET", hub.url + "/api/v1/datasets?q=" + urllib.request.quote(text))
    if status != 200:
        return []
    return [item for item in body["items"]
            if (item["title"].get("en") or item["title"].get("zh")) == text]


def _bundle(hub: Node, dataset_id: str) -> dict[str, Any] | None:
    status, body = http("GET", f"{hub.url}/api/v1/federation/datasets/{dataset_id}/versions/1"
                               "/proof")
    return body if status == 200 else None


def _member(hub: Node, origin: str) -> dict[str, Any]:
    members = http("GET", hub.url + "/api/v1/federation/members")[1]["members"]
    return next(m for m in members if m["origin"] == origin)


FEDERATED_STEPS = ("fetch", "metadata", "member_signature", "member_inclusion", "cosignature",
                   "hub_entry", "hub_signature", "hub_inclusion", "anchors")


def _verify_in_chromium(browser: Any, url: str) -> None:  # noqa: F811
    import re

    from playwright.sync_api import expect

    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.locator("tr.current button.verify-button").click()
        expect(page.locator("#verify-panel")).to_have_attribute(
            "data-outcome", re.compile("ok|failed"), timeout=60_000)
        print(page.locator("#verify-panel").inner_text())
        results = {step: page.locator(f'#verify-steps li[data-step="{step}"]')
                   .get_attribute("data-result") for step in FEDERATED_STEPS}
        assert results == dict.fromkeys(FEDERATED_STEPS, "ok"), results
        expect(page.locator("#verify-summary")).to_contain_text("Verified")
        assert errors == []
    finally:
        context.close()


def _harvest(hub: Node, ckan: Node, token: str, files: Files) -> None:
    """A CKAN-API source (another registry's /api/3) and a DCAT-AP Turtle file: harvested by
    the hub's own loop, then changed at the source and harvested again."""
    from registry.federation.harvest import LABEL

    ids = {}
    for title in ("Bridge inspections", "Ferry timetables"):
        status, body = http("POST", ckan.url + "/api/v1/datasets",
                            {"metadata": _plain(title)}, token)
        assert status == 201, body
        ids[title] = body["id"]
    wait_for(lambda: _ckan_count(ckan) == 2, "both on the CKAN API")
    hub.ndr("federation", "harvest", "add", "ckan", ckan.url)
    hub.ndr("federation", "harvest", "add", "dcat", files.url + "/catalog.ttl")

    def reports() -> dict[str, dict[str, Any]] | None:
        sources = http("GET", hub.url + "/api/v1/federation/harvest-sources")[1]["sources"]
        done = {s["url"]: s for s in sources if s.get("last_report")}
        return done if len(done) == 2 else None

    first = wait_for(reports, "the hub's harvest loop ran both sources")  # scheduled, not by hand
    for source in first.values():
        report = source["last_report"]
        report = json.loads(report) if isinstance(report, str) else report
        assert (report["created"], report["error"]) == (2, None), source
        assert source["label"] == LABEL
    for title in ("Bridge inspections", "Ferry timetables", "Air quality stations",
                  "Noise map"):
        (hit,) = wait_for(lambda t=title: _hub_titles(hub, t), f"{title} on the hub")
        org = http("GET", f"{hub.url}/api/v1/organizations/{hit['organization']}")[1]
        assert LABEL in json.dumps(org, ensure_ascii=False), org
        page = http("GET", f"{hub.url}/datasets/{hit['id']}?lang=en")[1]
        assert LABEL in page  # the page names its source as unverified too

    # At the sources: one record updated, one withdrawn (CKAN) or gone (DCAT).
    assert http("PATCH", f"{ckan.url}/api/v1/datasets/{ids['Bridge inspections']}",
                {"metadata": {"title": {"zh": "Bridge inspections 2025",
                                        "en": "Bridge inspections 2025"}}}, token)[0] == 200
    assert http("DELETE", f"{ckan.url}/api/v1/datasets/{ids['Ferry timetables']}",
                token=token)[0] == 200
    wait_for(lambda: _ckan_count(ckan) == 1 and "Bridge inspections 2025" in json.dumps(
        http("GET", ckan.url + "/api/3/action/package_search")[1]), "the CKAN API changed")
    files.files["catalog.ttl"] = (DCAT_TTL.replace('"Air quality stations"@en',
                                                   '"Air quality stations (hourly)"@en')
                                  .split("<https://data.example.eu/ds/noise>")[0], "text/turtle")
    sources = http("GET", hub.url + "/api/v1/federation/harvest-sources")[1]["sources"]
    for source in sources:
        line = hub.ndr("federation", "harvest", "run", "--source", str(source["id"]))
        print(line.strip())
        assert "created 0, updated 1, unchanged 0, withdrawn 1, rejected 0" in line, line
    # searchable within NDR_SEARCH_MAX_LAG_MS of the harvest's commit, in whichever worker
    wait_for(lambda: _hub_titles(hub, "Bridge inspections 2025"), "the update in search")
    wait_for(lambda: _hub_titles(hub, "Air quality stations (hourly)"), "the DCAT update")
    wait_for(lambda: not _hub_titles(hub, "Ferry timetables"), "withdrawn out of search")
    wait_for(lambda: not _hub_titles(hub, "Noise map"), "gone out of search")


def _plain(title: str) -> dict[str, Any]:
    from tests.catalogue.helpers import metadata

    return metadata(title={"zh": title, "en": title})


def _ckan_count(node: Node) -> int:
    status, body = http("GET", node.url + "/api/3/action/package_search")
    return int(body["result"]["count"]) if status == 200 else -1
