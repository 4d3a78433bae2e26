"""Mirroring a member's catalogue with proofs, and the whole proof chain checked offline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from anchoring.auditor.federated import verify_federated
from anchoring.note import NoteVerifier
from registry.federation.member import CheckpointSubmitter, parse_witness_config
from registry.federation.mirror import Mirror
from registry.federation.models import FederatedEntry, FederationMember, MirrorRefusal
from registry.federation.trust import add_member
from tests.catalogue.helpers import metadata
from tests.federation.conftest import Proxy, serve

MEMBER_ORIGIN = "province-a.example.gov.cn/log"
HUB_ORIGIN = "hub.example.gov.cn/log"


class Setup:
    def __init__(self, hub, member, hub_url: str, member_url: str) -> None:  # type: ignore[no-untyped-def]
        self.hub, self.member = hub, member
        self.hub_url, self.member_url = hub_url, member_url
        member.org("dept")
        self.token = member.token("dept")
        key = hub.client.get("/witness/key").text.strip()
        self.submitter = CheckpointSubmitter(member.state.db.read, member.state.db.write,
                                             member.state.log,
                                             parse_witness_config(f"{hub_url}/witness {key}"))

    def publish(self, title: str, visibility: str = "public") -> str:
        r = self.member.client.post(
            "/api/v1/datasets", headers=self.member.auth(self.token),
            json={"metadata": metadata(title={"zh": title, "en": title}),
                  "visibility": visibility})
        assert r.status_code == 201, r.get_json()
        return r.get_json()["id"]

    def witness(self) -> None:
        with self.member.state.db.write() as session:
            self.member.state.log.sign_checkpoint_if_grown(session)
        outcome = self.submitter.run_once()
        assert all(v.startswith(("cosigned", "up to date")) for v in outcome.values()), outcome

    def follow(self, url: str | None = None) -> None:
        with self.hub.state.db.write() as session:
            add_member(session, MEMBER_ORIGIN, self.member.state.log.verifier_key,
                       url=url or self.member_url)

    def hub_search(self, text: str) -> list[str]:
        r = self.hub.client.get("/api/v1/datasets", query_string={"q": text})
        assert r.status_code == 200, r.get_json()
        return [item["title"]["en"] for item in r.get_json()["items"]]


@pytest.fixture
def setup(make_registry, served) -> Setup:  # type: ignore[no-untyped-def]
    hub = make_registry("hub", HUB_ORIGIN)
    member = make_registry("member", MEMBER_ORIGIN)
    served.append(serve(hub))
    served.append(serve(member))
    return Setup(hub, member, served[0].url, served[1].url)


def test_public_entries_are_mirrored_searchable_and_provable(setup: Setup, tmp_path: Path
                                                            ) -> None:
    setup.follow()
    road = setup.publish("Provincial road survey")
    setup.publish("Secret grain reserves", visibility="government")
    river = setup.publish("River gauge readings")
    r = setup.member.client.patch(f"/api/v1/datasets/{road}", headers=setup.member.auth(
        setup.token), json={"metadata": {"keywords": ["roads", "survey"]}})
    assert r.status_code == 200, r.get_json()
    assert setup.member.client.delete(f"/api/v1/datasets/{river}", headers=setup.member.auth(
        setup.token)).status_code == 200
    setup.witness()
    report = Mirror(setup.hub.state).run_member(MEMBER_ORIGIN)
    assert (report.mirrored, report.skipped, report.refused, report.error) == (4, 1, [], None)
    assert setup.hub_search("road survey") == ["Provincial road survey"]
    assert setup.hub_search("grain") == []  # government-only: never mirrored
    with setup.hub.state.db.read() as session:
        assert session.scalar(select(func.count()).select_from(FederatedEntry)) == 4
        assert "grain" not in json.dumps([e.entry for e in session.scalars(
            select(FederatedEntry))])
    # The hub's own self-audit accepts the member.checkpoint leaves and the federated rows
    # (they are not versions of this log: a member.checkpoint leaf covers them).
    from anchoring.self_audit import audit_leaves
    from registry.datasets.log_audit import catalogue_auditor

    with setup.hub.state.db.read() as session:
        size = setup.hub.state.log.size(session)
        assert size >= 1
        assert audit_leaves(session, 0, [], size)[0] == []
        assert catalogue_auditor(setup.hub.state.log)(session, "", 1000)[0] == []
    # Nothing new: a second run does nothing.
    again = Mirror(setup.hub.state).run_member(MEMBER_ORIGIN)
    assert (again.mirrored, again.start, again.end) == (0, 5, 5)

    hit = setup.hub.client.get("/api/v1/datasets", query_string={"q": "road survey"}) \
        .get_json()["items"][0]
    with setup.hub.state.db.write() as session:
        setup.hub.state.log.sign_checkpoint_if_grown(session)
    bundle = setup.hub.client.get(f"/api/v1/federation/datasets/{hit['id']}/versions/2/proof")
    assert bundle.status_code == 200, bundle.get_json()
    data = bundle.get_json()
    hub_key = NoteVerifier.from_vkey(setup.hub.state.log.verifier_key)
    member_key = NoteVerifier.from_vkey(setup.member.state.log.verifier_key)
    steps = verify_federated(data, hub_key, member_key=member_key)
    assert all(s.ok for s in steps), steps
    assert len(steps) == 8
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(data))
    cli = subprocess.run([sys.executable, "-m", "anchoring.auditor", "verify", str(path),
                          "--key", setup.hub.state.log.verifier_key, "--member-key",
                          setup.member.state.log.verifier_key], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "ok    hub cosignature" in cli.stdout
    # Each link fails on its own when tampered with.
    for mutate, failing in (
            (lambda d: d["member"]["metadata"].update(keywords=["x"]), "metadata hash"),
            (lambda d: d["member"].update(index=d["member"]["index"] + 1),
             "member inclusion proof"),
            (lambda d: d["hub"].update(index=d["hub"]["index"] + 1), "hub inclusion proof"),
            (lambda d: d["member"].update(checkpoint=d["member"]["checkpoint"].rsplit(
                "\u2014", 1)[0]), "hub cosignature")):
        copy = json.loads(json.dumps(data))
        mutate(copy)
        failed = [s.name for s in verify_federated(copy, hub_key, member_key=member_key)
                  if not s.ok]
        assert failing in failed, (failing, failed)


def _proxied(setup: Setup, served) -> Proxy:  # type: ignore[no-untyped-def]
    proxy = Proxy(setup.member_url)
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, proxy.app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    served.append(type("S", (), {"stop": lambda self: server.shutdown()})())
    setup.follow(url=f"http://127.0.0.1:{server.server_port}")
    return proxy


def test_bad_records_are_refused_one_by_one(setup: Setup, served) -> None:  # type: ignore[no-untyped-def]
    proxy = _proxied(setup, served)
    ids = [setup.publish(f"Dataset {i}") for i in range(4)]
    setup.witness()

    def wrong_metadata(body: bytes) -> bytes:
        data = json.loads(body)
        data["metadata"]["title"]["en"] = "Forged title"
        return json.dumps(data).encode()

    def flip_entry_one(body: bytes) -> bytes:
        return body.replace(ids[1].encode(), ids[1][:-1].encode() + b"0"
                            if not ids[1].endswith("0") else ids[1][:-1].encode() + b"1")

    proxy.mutate[f"api/v1/datasets/{ids[2]}/versions/1"] = wrong_metadata
    proxy.mutate["log/tile/entries/"] = flip_entry_one
    report = Mirror(setup.hub.state).run_member(MEMBER_ORIGIN)
    reasons = sorted(reason for _, reason in report.refused)
    assert reasons == ["entry does not hash to its leaf (tampered)",
                       "metadata does not match the entry's metadata_sha256"], reasons
    assert report.mirrored == 2
    assert sorted(setup.hub_search("Dataset")) == ["Dataset 0", "Dataset 3"]
    listed = setup.hub.client.get("/api/v1/federation/refusals").get_json()["refusals"]
    assert sorted(r["leaf_index"] for r in listed) == [1, 2]


def test_tiles_that_do_not_reproduce_the_root_apply_nothing(setup: Setup, served) -> None:  # type: ignore[no-untyped-def]
    proxy = _proxied(setup, served)
    for i in range(3):
        setup.publish(f"Dataset {i}")
    setup.witness()
    proxy.mutate["log/tile/0/"] = lambda body: bytes([body[0] ^ 1]) + body[1:]
    report = Mirror(setup.hub.state).run_member(MEMBER_ORIGIN)
    assert report.mirrored == 0 and "do not reproduce the cosigned root" in report.refused[0][1]
    with setup.hub.state.db.read() as session:
        assert session.get(FederationMember, MEMBER_ORIGIN).mirrored_size == 0
        assert session.scalar(select(func.count()).select_from(FederatedEntry)) == 0
        assert session.scalar(select(func.count()).select_from(MirrorRefusal)) == 1
    # Malformed (truncated) tiles, then garbage: refused, never a crash.
    proxy.mutate["log/tile/0/"] = lambda body: body[:-5]
    assert Mirror(setup.hub.state).run_member(MEMBER_ORIGIN).mirrored == 0
    proxy.mutate.clear()
    proxy.mutate["log/tile/entries/"] = lambda body: b"\xff" * 7
    report = Mirror(setup.hub.state).run_member(MEMBER_ORIGIN)
    assert report.mirrored == 0 and all("entry bundle" in r for _, r in report.refused)
    assert setup.hub_search("Dataset") == []


def test_a_member_that_is_offline_is_retried_later(setup: Setup, served) -> None:  # type: ignore[no-untyped-def]
    setup.follow(url="http://127.0.0.1:9")
    setup.publish("Dataset offline")
    setup.witness()
    report = Mirror(setup.hub.state).run_member(MEMBER_ORIGIN)
    assert report.error and report.mirrored == 0
    setup.follow(url=setup.member_url)
    assert Mirror(setup.hub.state).run_member(MEMBER_ORIGIN).mirrored == 1
