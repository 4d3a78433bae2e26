"""Load: publishers and searchers over HTTP against a real gunicorn, for each publish path.

For each database (SQLite file; PostgreSQL on a scratch server from
tests/support/postgres_server.py) and each publish path, a fresh registry is served by
gunicorn exactly as `make run` does (`--config deploy/gunicorn.conf.py`), then 8 publisher
threads POST new datasets and 8 searcher threads GET /api/v1/datasets?q=… for the given time.
The paths: `sequencer` (the deployment: `ndr sequencer` batches every worker's publishes),
`worker` (NDR_SEQUENCER=worker: each worker batches its own), `unbatched`
(NDR_PUBLISH_BATCH=0: one transaction per request, the old path). Printed: acknowledged
writes/s, write p50/p99, reads/s, read p50/p99, errors (any non-2xx or connection failure).

`--kill` adds a crash run per database: under the same load the gunicorn process group is
killed with SIGKILL, restarted, and every acknowledged write is checked to be in the log at the
index its receipt named, byte for byte, and the next signed checkpoint to extend the last one.

    .venv/bin/python bench/load_bench.py                     # 60 s per run, both databases
    .venv/bin/python bench/load_bench.py --seconds 20 --db sqlite --kill
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

QUERIES = ["traffic", "交通", "health", "统计", "school", "data", "monthly", "道路"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def metadata(worker: int, n: int) -> dict[str, object]:
    return {
        "title": {"zh": f"道路交通流量统计 {worker}-{n}",
                  "en": f"Road traffic counts {worker}-{n}"},
        "description": {"zh": "各省公路交通流量月度统计。", "en": "Monthly road traffic counts."},
        "keywords": ["交通", "traffic", f"w{worker}"], "themes": ["TRAN"],
        "issued": "2024-01-15", "update_cycle": "monthly",
        "distributions": [{"access_url": "https://data.example.gov.cn/traffic.csv",
                           "format": "CSV", "media_type": "text/csv"}],
    }


# ---------------------------------------------------------------- one registry


@dataclass
class Registry:
    database_url: str
    var_dir: Path
    port: int
    token: str
    path: str  # sequencer | worker | unbatched
    process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        return {**os.environ, "DATABASE_URL": self.database_url,
                "NDR_VAR_DIR": str(self.var_dir), "NDR_ANCHOR_INPROCESS": "0",
                "NDR_PUBLISH_BATCH": "0" if self.path == "unbatched" else "1",
                "NDR_SEQUENCER": "worker" if self.path == "worker" else "process",
                "NDR_BIND": f"127.0.0.1:{self.port}", "PYTHONPATH": str(REPO)}

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py",
             "--bind", f"127.0.0.1:{self.port}", "--access-logfile", "/dev/null",
             "--log-level", "warning", "app:create_app()"],
            cwd=REPO, env=self.env(), start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=open(self.var_dir / "gunicorn.err", "ab"))  # noqa: SIM115 - child owns it
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not start; see {self.var_dir / 'gunicorn.err'}")

    def kill(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(15)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None


def prepare(database_url: str, var_dir: Path) -> str:
    """Migrate, create the log key, one organisation and an editor token (as `ndr init` and
    `ndr org create` / `ndr token create` would); return the token."""
    from registry.auth.principal import Principal
    from registry.auth.tokens import issue_token
    from registry.bootstrap import ensure_signing_key
    from registry.config import Settings
    from registry.database import Database
    from registry.migrate import upgrade_database
    from registry.organizations.actions import organization_create
    from registry.organizations.models import Role

    settings = Settings(var_dir=var_dir, database_url=database_url)
    var_dir.mkdir(parents=True, exist_ok=True)
    ensure_signing_key(settings)
    db = Database(database_url)
    upgrade_database(db.engine)
    operator = Principal(id="bench:operator", organization_id=None, role=Role.OPERATOR)
    with db.write() as session:
        organization_create(session, operator, {"id": "mot", "name_zh": "交通运输部",
                                                "name_en": "Ministry of Transport"})
        token = issue_token(session, name="bench", organization_id="mot",
                            role=Role.EDITOR).secret
    db.dispose()
    return token


# ---------------------------------------------------------------- load


@dataclass
class Tally:
    write_ms: list[float] = field(default_factory=list)
    read_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    acked: list[tuple[str, int, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, kind: str) -> None:
        with self.lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1


def _publisher(port: int, token: str, worker: int, stop: threading.Event, tally: Tally,
               expect_death: bool) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    n = 0
    while not stop.is_set():
        n += 1
        body = json.dumps({"metadata": metadata(worker, n)}, ensure_ascii=False).encode()
        started = time.perf_counter()
        try:
            connection.request("POST", "/api/v1/datasets", body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            if not expect_death:
                tally.error("write: connection")
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            time.sleep(0.05 if expect_death else 0)
            continue
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 201:
            tally.error(f"write: HTTP {response.status}")
            continue
        created = json.loads(data)
        with tally.lock:
            tally.write_ms.append(elapsed)
            tally.acked.append((created["id"], created["log"]["index"], created["log"]["entry"]))


def _searcher(port: int, worker: int, stop: threading.Event, tally: Tally,
              expect_death: bool) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    n = worker
    while not stop.is_set():
        n += 1
        path = f"/api/v1/datasets?q={QUERIES[n % len(QUERIES)]}&facet=format,keyword&limit=20"
        started = time.perf_counter()
        try:
            connection.request("GET", _quote(path))
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            if not expect_death:
                tally.error("read: connection")
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            time.sleep(0.05 if expect_death else 0)
            continue
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            tally.error(f"read: HTTP {response.status}")
            continue
        with tally.lock:
            tally.read_ms.append(elapsed)


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/?=&,")


def run_load(registry: Registry, seconds: float, publishers: int, searchers: int, *,
             kill_after: float | None = None) -> Tally:
    tally = Tally()
    stop = threading.Event()
    dying = kill_after is not None
    threads = [threading.Thread(target=_publisher, args=(registry.port, registry.token, w,
                                                         stop, tally, dying))
               for w in range(publishers)]
    threads += [threading.Thread(target=_searcher, args=(registry.port, w, stop, tally, dying))
                for w in range(searchers)]
    for thread in threads:
        thread.start()
    if kill_after is not None:
        time.sleep(kill_after)
        registry.kill()
        time.sleep(0.5)
    else:
        time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(60)
    return tally


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]


def report(label: str, tally: Tally, seconds: float) -> None:
    errors = sum(tally.errors.values())
    print(f"{label:<24} {len(tally.write_ms) / seconds:>8.1f} "
          f"{percentile(tally.write_ms, 0.5):>8.1f} {percentile(tally.write_ms, 0.99):>8.1f} "
          f"{len(tally.read_ms) / seconds:>8.1f} {percentile(tally.read_ms, 0.5):>8.1f} "
          f"{percentile(tally.read_ms, 0.99):>8.1f} {errors:>6}"
          + (f"  {tally.errors}" if errors else ""), flush=True)


HEADER = (f"{'run':<24} {'writes/s':>8} {'w p50ms':>8} {'w p99ms':>8} {'reads/s':>8} "
          f"{'r p50ms':>8} {'r p99ms':>8} {'errors':>6}")


# ---------------------------------------------------------------- crash check


def check_after_crash(registry: Registry, acked: list[tuple[str, int, str]]) -> str:
    """Restart; every acknowledged write is in the log where its receipt said; the next
    checkpoint extends the last one signed before the kill."""
    from sqlalchemy import select

    from anchoring import tlog
    from anchoring.log_store import LogEntry
    from registry.bootstrap import build_state
    from registry.config import Settings
    from registry.datasets.models import DatasetVersion

    settings = Settings(var_dir=registry.var_dir, database_url=registry.database_url,
                        run_background=False)
    state = build_state(settings)
    with state.db.read() as session:
        signed_before = state.log.latest_checkpoint(session)
    registry.start()
    try:
        with state.db.read() as session:
            size = state.log.size(session)
            entries = {row.idx: bytes(row.entry) for row in session.scalars(select(LogEntry))}
            versions = {(v.dataset_id, v.leaf_index) for v in session.scalars(
                select(DatasetVersion).where(DatasetVersion.leaf_index.is_not(None)))}
        problems = []
        if sorted(entries) != list(range(size)):
            problems.append("log indexes are not gap-free")
        lost = [a for a in acked if entries.get(a[1]) != a[2].encode()
                or (a[0], a[1]) not in versions]
        if lost:
            problems.append(f"{len(lost)} acknowledged writes lost or changed")
        deadline = time.monotonic() + 60
        latest = None
        while time.monotonic() < deadline:
            with state.db.read() as session:
                latest = state.log.latest_checkpoint(session)
            if latest is not None and latest.size == size:
                break
            time.sleep(0.1)
        if latest is None or latest.size != size:
            problems.append("no checkpoint for the restarted log")
        elif signed_before is not None and 0 < signed_before.size < latest.size:
            with state.db.read() as session:
                proof = state.log.consistency_proof(session, signed_before.size, latest.size)
            try:
                tlog.check_tree(proof, latest.size, latest.root, signed_before.size,
                                signed_before.root)
            except tlog.ProofError as exc:
                problems.append(f"checkpoint {latest.size} does not extend "
                                f"{signed_before.size}: {exc}")
        if problems:
            return "FAILED: " + "; ".join(problems)
        assert latest is not None
        before = signed_before.size if signed_before else "-"
        return (f"{len(acked)} acknowledged, log size {size}, 0 lost, gap-free; next "
                f"checkpoint {latest.size} consistent with {before}")
    finally:
        registry.stop()
        state.db.dispose()


# ---------------------------------------------------------------- main


def database_urls(kinds: list[str], root: Path):  # type: ignore[no-untyped-def]
    """(label, factory) per database kind; each factory returns a fresh database URL."""
    server = None
    if "postgres" in kinds:
        from tests.support.postgres_server import PostgresServer

        server = PostgresServer().start()
    for kind in kinds:
        if kind == "sqlite":
            yield kind, lambda: f"sqlite:///{root / uuid.uuid4().hex / 'registry.db'}"
        else:
            assert server is not None

            def fresh() -> str:
                import psycopg

                name = f"bench_{uuid.uuid4().hex[:10]}"
                with psycopg.connect(server.admin_url, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                base = server.admin_url.rsplit("/", 1)[0]
                return base.replace("postgresql://", "postgresql+psycopg://", 1) + "/" + name

            yield kind, fresh
    if server is not None:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=10.0,
                        help="seconds of load before each measured run (not counted)")
    parser.add_argument("--publishers", type=int, default=8)
    parser.add_argument("--searchers", type=int, default=8)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--paths", default="sequencer,worker,unbatched",
                        help="sequencer: the deployment (one `ndr sequencer` process batches "
                        "every worker's publishes); worker: each worker batches its own; "
                        "unbatched: one transaction per request (the old path)")
    parser.add_argument("--kill", action="store_true", help="also kill -9 under load")
    args = parser.parse_args()
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    print(f"{args.publishers} publishers + {args.searchers} searchers, {args.seconds:.0f} s "
          f"per run, gunicorn --config deploy/gunicorn.conf.py "
          f"(workers={os.environ.get('NDR_WORKERS', 'default')}, "
          f"threads={os.environ.get('NDR_THREADS', '4')}), {os.cpu_count()} CPUs")
    print(HEADER)
    with tempfile.TemporaryDirectory(prefix="ndr-load-") as tmp:
        root = Path(tmp)
        for kind, fresh in database_urls(kinds, root):
            for path in paths:
                url = fresh()
                var_dir = root / uuid.uuid4().hex
                if url.startswith("sqlite"):
                    var_dir = Path(url.removeprefix("sqlite:///")).parent
                token = prepare(url, var_dir)
                registry = Registry(url, var_dir, free_port(), token, path=path)
                registry.start()
                try:
                    # Not measured: every worker loads jieba and builds its search snapshot.
                    run_load(registry, args.warmup, args.publishers, args.searchers)
                    tally = run_load(registry, args.seconds, args.publishers, args.searchers)
                    died = registry.process is not None and registry.process.poll() is not None
                finally:
                    registry.stop()
                report(f"{kind} {path}", tally, args.seconds)
                if died:
                    log = (var_dir / "gunicorn.err").read_text(errors="replace")
                    print(f"  gunicorn exited during the run; its log ends:\n{log[-2000:]}")
            if args.kill:
                url = fresh()
                var_dir = (Path(url.removeprefix("sqlite:///")).parent
                           if url.startswith("sqlite") else root / uuid.uuid4().hex)
                token = prepare(url, var_dir)
                registry = Registry(url, var_dir, free_port(), token, path="sequencer")
                registry.start()
                run_load(registry, args.warmup, args.publishers, args.searchers)
                kill_at = max(5.0, args.seconds / 2)
                tally = run_load(registry, args.seconds, args.publishers, args.searchers,
                                 kill_after=kill_at)
                print(f"{kind} kill -9 after {kill_at:.0f} s under load: "
                      f"{check_after_crash(registry, tally.acked)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
