"""Federation figures. Two modes:

``anchors`` - anchor cost: transactions per epoch with N members, hub vs. each member alone.

A real hub registry (SQLite, the `local` anchor journal backend, the real anchor worker on a
controlled clock) witnesses N member logs. In each epoch every member grows and submits its new
checkpoint through the hub's tlog-witness path; the hub logs each as a `member.checkpoint` leaf
and signs its own checkpoint; the anchor worker runs. Side by side, in the same run, each
member anchors its own log with its own worker (what it costs without a hub).

Prints, for each N: anchor transactions per epoch (hub; members alone), the hub leaves added per
epoch, and the witness submission time (median, p99).

    .venv/bin/python bench/federation_bench.py anchors --members 2 20 --epochs 5

``mirror`` - a member registry (gunicorn, its own SQLite) with N imported public entries is
mirrored by a hub (in this process) with every check: hash tiles against the cosigned root,
entries against leaves, metadata against metadata_sha256. Prints entries/s and the peak RSS
of the hub process, side by side with the bare transport (the same GETs, nothing checked or
stored) in the same run:

    .venv/bin/python bench/federation_bench.py mirror --entries 100000

``lag`` - from a member's publish (its 201) to searchable on the hub: a hub and a member, each
under gunicorn exactly as in tests/federation/test_e2e_processes.py, the member pushing its
checkpoints to the hub's witness endpoint. Publishes arrive at a steady pace while a watcher
polls the hub's search every 20 ms; prints p50/p99/max, with the test's short intervals and
with the shipped defaults (checkpoint 1 s, witness 1 s, mirror 5 s), in one run:

    .venv/bin/python bench/federation_bench.py lag --publishes 120
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import func, select  # noqa: E402

from anchoring.anchor_backends import AnchorConfig, make_anchor_backend  # noqa: E402
from anchoring.anchor_store import Anchor  # noqa: E402
from anchoring.anchor_worker import AnchorWorker  # noqa: E402
from anchoring.log_store import TransparencyLog  # noqa: E402
from anchoring.note import NoteSigner  # noqa: E402
from anchoring.witness import AddCheckpoint, CosignatureSigner  # noqa: E402
from registry.database import Database  # noqa: E402
from registry.federation.trust import add_member  # noqa: E402
from registry.federation.witnessing import HubWitness  # noqa: E402
from registry.migrate import upgrade_database  # noqa: E402
from tests.federation.memberlog import MemberLog  # noqa: E402

EPOCH = 60.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


class Clock:
    def __init__(self) -> None:
        self.now = (time.time() // EPOCH + 1) * EPOCH + 1

    def __call__(self) -> float:
        return self.now


def worker_for(db: Database, latest, tmp: Path, name: str, clock: Clock) -> AnchorWorker:  # type: ignore[no-untyped-def]
    backend = make_anchor_backend(
        AnchorConfig(backend="local", journal_key_file=str(tmp / f"{name}-journal.key")),
        write_session_factory=db.write, var_dir=tmp)
    return AnchorWorker(db.write, latest, backend, epoch_seconds=EPOCH, clock=clock,
                        worker_id=name)


def count_anchors(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(Anchor)) or 0)


def run(members: int, epochs: int, growth: int, tmp: Path) -> dict[str, float]:
    clock = Clock()
    hub_db = Database(f"sqlite:///{tmp / 'hub.db'}")
    upgrade_database(hub_db.engine)
    hub_origin = "hub.example.gov.cn/log"
    hub_log = TransparencyLog(hub_origin, NoteSigner.generate(hub_origin))
    witness = HubWitness(CosignatureSigner.from_note_signer(
        NoteSigner.generate("hub.example.gov.cn/witness")), hub_log, clock=clock)
    hub_worker = worker_for(hub_db, hub_log.latest_checkpoint, tmp, "hub", clock)

    logs, member_dbs, member_workers, heads = [], [], [], []
    for i in range(members):
        log = MemberLog(NoteSigner.generate(f"member-{i}.example.gov.cn/log"))
        logs.append(log)
        with hub_db.write() as session:
            add_member(session, log.origin, log.signer.verifier_key)
        # The alternative: the member anchors its own log with its own worker and journal.
        db = Database(f"sqlite:///{tmp / f'member-{i}.db'}")
        upgrade_database(db.engine)
        member_log = TransparencyLog(log.origin, log.signer)
        member_dbs.append((db, member_log))
        member_workers.append(worker_for(db, member_log.latest_checkpoint, tmp, f"m{i}", clock))
        heads.append(0)

    submit_ms: list[float] = []
    hub_leaves: list[int] = []
    for _ in range(epochs):
        clock.now += EPOCH
        before = hub_log_size(hub_db, hub_log)
        for i, log in enumerate(logs):
            log.extend(growth)
            db, member_log = member_dbs[i]
            with db.write() as session:  # the member's own log grows the same way
                member_log.append(session, log.entries[-growth:])
                member_log.sign_checkpoint_if_grown(session)
            started = time.perf_counter()
            with hub_db.write() as session:
                result = witness.submit(session, log.origin, AddCheckpoint(
                    heads[i], log.proof(heads[i]), log.note()))
            submit_ms.append((time.perf_counter() - started) * 1000)
            if result.status != 200:
                raise SystemExit(f"witness refused {log.origin}: {result.status} {result.body}")
            heads[i] = log.size
        with hub_db.write() as session:
            hub_log.sign_checkpoint_if_grown(session)
        hub_leaves.append(hub_log_size(hub_db, hub_log) - before)
        for worker in [hub_worker, *member_workers]:
            worker.run_once()  # sees growth in this epoch
        clock.now += EPOCH  # the epoch closes: anchors are due
        for worker in [hub_worker, *member_workers]:
            worker.run_once()
    hub_tx = count_anchors(hub_db)
    member_tx = sum(count_anchors(db) for db, _ in member_dbs)
    return {"members": members, "epochs": epochs, "hub_tx_per_epoch": hub_tx / epochs,
            "alone_tx_per_epoch": member_tx / epochs,
            "hub_leaves_per_epoch": statistics.mean(hub_leaves),
            "submit_ms_p50": statistics.median(submit_ms),
            "submit_ms_p99": percentile(submit_ms, 0.99)}


def hub_log_size(db: Database, log: TransparencyLog) -> int:
    with db.read() as session:
        return log.size(session)


def anchors_main(args: argparse.Namespace) -> None:
    print(f"{'members':>7} {'epochs':>6} {'hub tx/epoch':>12} {'alone tx/epoch':>14} "
          f"{'hub leaves/epoch':>16} {'submit ms p50':>13} {'p99':>7}")
    for n in args.members:
        with tempfile.TemporaryDirectory() as tmp:
            r = run(n, args.epochs, args.growth, Path(tmp))
        print(f"{r['members']:>7} {r['epochs']:>6} {r['hub_tx_per_epoch']:>12.2f} "
              f"{r['alone_tx_per_epoch']:>14.2f} {r['hub_leaves_per_epoch']:>16.1f} "
              f"{r['submit_ms_p50']:>13.2f} {r['submit_ms_p99']:>7.2f}")


def _ndr(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", "from registry.cli import main; "
                           "raise SystemExit(main())", *args], env=env, cwd=REPO,
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"ndr {args[0]} failed: {done.stderr[-2000:]}")
    return done.stdout


def _member(tmp: Path, entries: int) -> tuple[dict[str, str], subprocess.Popen[bytes], str]:
    from tests.catalogue.helpers import metadata

    port = 18000 + os.getpid() % 1000
    env = {**os.environ, "PYTHONPATH": str(REPO), "NDR_VAR_DIR": str(tmp / "member"),
           "DATABASE_URL": f"sqlite:///{tmp / 'member.db'}",
           "NDR_LOG_ORIGIN": "member.example.gov.cn/log", "NDR_BIND": f"127.0.0.1:{port}",
           "NDR_WORKERS": "2", "NDR_THREADS": "8", "NDR_MIRROR_INTERVAL": "0",
           "NDR_FEDERATION_POLL": "0", "NDR_ANCHOR_INPROCESS": "0"}
    _ndr(env, "init")
    _ndr(env, "org", "create", "dept", "--name-zh", "成员部门")
    source = tmp / "entries.jsonl"
    with source.open("w") as out:
        for i in range(entries):
            record = {"external_id": f"e{i}", "visibility": "public", "metadata": metadata(
                title={"zh": f"数据集 {i}", "en": f"Dataset number {i}"})}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    started = time.perf_counter()
    _ndr(env, "import", str(source), "--org", "dept", "--format", "jsonl")
    _ndr(env, "log", "checkpoint")
    print(f"member: imported {entries} entries in {time.perf_counter() - started:.1f} s")
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config",
                                str(REPO / "deploy" / "gunicorn.conf.py"), "app:create_app()"],
                               env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=2).read()
            break
        except OSError:
            time.sleep(0.2)
    return env, process, url


def _bare_transport(url: str, size: int) -> float:
    """The same GETs as the mirror (hash tiles, entry bundles, metadata), nothing checked."""
    from anchoring import tlog
    from anchoring.auditor.monitor import TileClient

    tiles, api = TileClient(url + "/log/"), TileClient(url + "/")
    started = time.perf_counter()
    for n in range((size + 255) // 256):
        width = min(256, size - n * 256)
        tiles.get(tlog.Tile(level=0, n=n, width=width).path())
        for entry in tlog.split_entry_bundle(tiles.get(tlog.Tile(-1, n, width).path())):
            data = json.loads(entry)
            api.get(f"api/v1/datasets/{data['dataset']}/versions/{data['version']}")
    return time.perf_counter() - started


def mirror_main(args: argparse.Namespace) -> None:
    import resource

    from registry.bootstrap import build_state, ensure_signing_key
    from registry.config import Settings
    from registry.federation.mirror import Mirror
    from registry.federation.poller import fetch

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env, process, url = _member(tmp, args.entries)
        try:
            settings = Settings(var_dir=tmp / "hub", database_url=f"sqlite:///{tmp / 'hub.db'}",
                                run_background=False, log_origin="hub.example.gov.cn/log")
            ensure_signing_key(settings)
            hub_db = Database(settings.database_url)
            upgrade_database(hub_db.engine)
            state = build_state(settings, database=hub_db)
            origin = env["NDR_LOG_ORIGIN"]
            with hub_db.write() as session:
                add_member(session, origin, _ndr(env, "log", "key").strip(), url=url)
            note = fetch(url + "/log/checkpoint").decode()
            witness = HubWitness(CosignatureSigner.from_note_signer(
                NoteSigner.generate("hub.example.gov.cn/witness")), state.log)
            with hub_db.write() as session:
                witness.submit(session, origin, AddCheckpoint(0, [], note))
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            started = time.perf_counter()
            report = Mirror(state, timeout=30).run_member(origin)
            mirrored_s = time.perf_counter() - started
            rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            bare_s = _bare_transport(url, report.end)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)
    print(f"mirror report: {report.summary()}")
    print(f"{'':<34} {'entries':>8} {'seconds':>8} {'entries/s':>10} {'peak RSS MiB':>13}")
    print(f"{'mirror with proofs (hub)':<34} {report.mirrored:>8} {mirrored_s:>8.1f} "
          f"{report.mirrored / mirrored_s:>10.0f} {rss_after / 1024:>13.0f}")
    print(f"{'bare transport, nothing checked':<34} {report.end:>8} {bare_s:>8.1f} "
          f"{report.end / bare_s:>10.0f} {'':>13}")
    print(f"(peak RSS before mirroring: {rss_before / 1024:.0f} MiB)")


def _lag_run(tmp: Path, publishes: int, gap: float, defaults: bool) -> list[float]:
    """One hub and one member; returns publish → searchable-on-hub seconds per entry."""
    import threading
    import urllib.parse

    from tests.federation.test_e2e_processes import Node, http, wait_for

    slow = {"NDR_CHECKPOINT_INTERVAL": "1", "NDR_MIRROR_INTERVAL": "5",
            "NDR_WITNESS_INTERVAL": "1"} if defaults else {}
    hub = Node("hub", "hub.example.gov.cn/log", tmp / "hub", f"sqlite:///{tmp / 'hub.db'}",
               extra_env=dict(slow))
    member = Node("a", "province-a.example.gov.cn/log", tmp / "a", f"sqlite:///{tmp / 'a.db'}",
                  extra_env=dict(slow))
    nodes = [hub, member]
    acknowledged: dict[str, float] = {}
    seen: dict[str, float] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            cursor: str | None = None
            while True:  # every page: one mirror pass may bring more than a page
                params = {"q": "Lagbench", "sort": "-modified", "limit": 100}
                status, body = http("GET", hub.url + "/api/v1/datasets?" + urllib.parse.urlencode(
                    {**params, **({"cursor": cursor} if cursor else {})}))
                now = time.monotonic()
                if status != 200:
                    break
                for item in body["items"]:
                    seen.setdefault(item["title"]["en"], now)
                cursor = body.get("next_cursor")
                if not cursor:
                    break
            done.wait(0.02)

    try:
        for node in nodes:
            node.var.mkdir()
            node.ndr("init")
        witness_key = hub.ndr("federation", "status").split("witness key: ")[1].split()[0]
        hub.ndr("federation", "add", member.origin, member.ndr("log", "key").strip(),
                "--url", member.url)
        member.extra_env["NDR_WITNESSES"] = f"{hub.url}/witness {witness_key}"
        member.ndr("org", "create", "dept", "--name-en", "bench department")
        token = member.ndr("token", "create", "--org", "dept").strip()
        for node in nodes:
            node.start()
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        for i in range(publishes):
            title = f"Lagbench dataset {i}"
            started = time.monotonic()
            status, _ = http("POST", member.url + "/api/v1/datasets", {"metadata": {
                "title": {"zh": f"延迟测试 {i}", "en": title},
                "description": {"zh": "延迟测试。", "en": "Lag bench."},
                "keywords": ["bench"], "themes": ["TRAN"], "issued": "2024-01-15",
                "update_cycle": "monthly"}}, token)
            if status != 201:
                raise SystemExit(f"publish {i} on the member answered {status}")
            acknowledged[title] = time.monotonic()
            time.sleep(max(0.0, gap - (time.monotonic() - started)))  # the publishing pace
        wait_for(lambda: all(t in seen for t in acknowledged), "every entry on the hub", 120)
        done.set()
        watcher.join(5)
    finally:
        done.set()
        for node in nodes:
            node.stop()
    return [seen[t] - acknowledged[t] for t in acknowledged]


def lag_main(args: argparse.Namespace) -> None:
    print(f"{'intervals':<56} {'n':>4} {'p50 s':>7} {'p99 s':>7} {'max s':>7}")
    for defaults in (False, True):
        with tempfile.TemporaryDirectory() as tmp_name:
            lags = _lag_run(Path(tmp_name), args.publishes, args.gap, defaults)
        label = ("shipped defaults (checkpoint 1, witness 1, mirror 5 s)" if defaults
                 else "test intervals (checkpoint 0.2, witness/mirror 0.3 s)")
        print(f"{label:<56} {len(lags):>4} {statistics.median(lags):>7.2f} "
              f"{percentile(lags, 0.99):>7.2f} {max(lags):>7.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    anchors = sub.add_parser("anchors")
    anchors.add_argument("--members", type=int, nargs="+", default=[2, 20])
    anchors.add_argument("--epochs", type=int, default=5)
    anchors.add_argument("--growth", type=int, default=10, help="entries per member per epoch")
    anchors.set_defaults(run=anchors_main)
    mirror = sub.add_parser("mirror")
    mirror.add_argument("--entries", type=int, default=10_000)
    mirror.set_defaults(run=mirror_main)
    lag = sub.add_parser("lag")
    lag.add_argument("--publishes", type=int, default=120)
    lag.add_argument("--gap", type=float, default=0.25, help="seconds between publishes")
    lag.set_defaults(run=lag_main)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
