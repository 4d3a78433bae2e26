"""Benchmark of the transparency log: append throughput, cold-process proof latency (side by
side with pymerkle's SqliteTree), and a full monitor replay over HTTP.

    .venv/bin/python bench/log_bench.py --sizes 1000000            # the headline figures
    .venv/bin/python bench/log_bench.py --quick                      # a smoke run (20k leaves)
    .venv/bin/python bench/log_bench.py --sizes 10000000 --skip-monitor

Prints a table; figures are medians/p99 over many proofs, each measured inside a freshly
started Python process that opens the database file cold.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ORIGIN = "bench.registry.example/log"
BATCH = 50_000


def make_entry(i: int) -> bytes:
    digest = hashlib.sha256(str(i).encode()).hexdigest()
    return (f'{{"dataset":"ds-{i}","metadata_sha256":"{digest}","organization":"org-{i % 97}",'
            f'"time":"2025-01-01T00:00:00Z","type":"dataset.published","v":1,"version":1}}'
            ).encode()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


# ---- building -----------------------------------------------------------------------------

def build_ours(url: str, size: int, key_file: Path) -> dict[str, float]:
    from anchoring.keys import create_key_file, load_key_file
    from anchoring.log_store import LogBase, TransparencyLog
    from registry.database import Database

    signer = load_key_file(key_file) if key_file.exists() else create_key_file(key_file, ORIGIN)
    db = Database(url)
    LogBase.metadata.create_all(db.engine)
    log = TransparencyLog(ORIGIN, signer)
    with db.read() as session:
        start = log.size(session)
    t0 = time.perf_counter()
    for lo in range(start, size, BATCH):
        entries = [make_entry(i) for i in range(lo, min(size, lo + BATCH))]
        with db.write() as session:
            log.append(session, entries)
    elapsed = time.perf_counter() - t0
    with db.write() as session:
        log.sign_checkpoint_if_grown(session)
    db.dispose()
    from anchoring.tlog import stored_hash_count

    added = size - start
    return {"appended": added, "seconds": elapsed,
            "leaves_per_s": added / elapsed if elapsed else float("nan"),
            "hashes_stored": stored_hash_count(size)}


def build_pymerkle(path: Path, size: int) -> float:
    from pymerkle import SqliteTree

    t0 = time.perf_counter()
    with SqliteTree(str(path)) as tree:
        have = tree.get_size()
        for lo in range(have, size, BATCH):
            tree.append_entries([make_entry(i) for i in range(lo, min(size, lo + BATCH))])
    return time.perf_counter() - t0


# ---- cold-process proofs -----------------------------------------------------------------

def proof_worker(kind: str, path: str, size: int, count: int, budget: float) -> None:
    """Runs in a fresh process: open the file, time `count` random inclusion proofs."""
    rng = random.Random(42)
    latencies: list[float] = []
    deadline = time.perf_counter() + budget
    if kind == "ours":
        from anchoring.log_store import TransparencyLog
        from anchoring.note import NoteSigner
        from registry.database import Database

        db = Database(f"sqlite:///{path}")
        log = TransparencyLog(ORIGIN, NoteSigner.generate(ORIGIN))
        with db.read() as session:
            for _ in range(count):
                index = rng.randrange(size)
                t0 = time.perf_counter()
                log.inclusion_proof(session, index, size)
                latencies.append(time.perf_counter() - t0)
                if time.perf_counter() > deadline:
                    break
    else:
        from pymerkle import SqliteTree

        tree = SqliteTree(path)
        for _ in range(count):
            index = rng.randrange(size)
            t0 = time.perf_counter()
            tree.prove_inclusion(index + 1, size)
            latencies.append(time.perf_counter() - t0)
            if time.perf_counter() > deadline:
                break
    print(json.dumps(latencies))


def cold_proofs(kind: str, path: Path, size: int, count: int, budget: float) -> list[float]:
    out = subprocess.run(
        [sys.executable, __file__, "--proof-worker", kind, str(path), str(size), str(count),
         str(budget)], check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout)


# ---- monitor replay ----------------------------------------------------------------------

def serve_worker(db_path: str, key_file: str, port: int) -> None:
    import logging
    import types

    from flask import Flask
    from werkzeug.serving import make_server

    from anchoring.keys import load_key_file
    from anchoring.log_store import TransparencyLog
    from registry.database import Database
    from registry.log_views import log_blueprint

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    app = Flask("bench")
    app.register_blueprint(log_blueprint)
    app.extensions["ndr"] = types.SimpleNamespace(
        db=Database(f"sqlite:///{db_path}"),
        log=TransparencyLog(ORIGIN, load_key_file(key_file)))
    make_server("127.0.0.1", port, app, threaded=True).serve_forever()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def monitor_replay(db_path: Path, key_file: Path, workers: int) -> tuple[float, int]:
    from anchoring.auditor.monitor import run_monitor
    from anchoring.keys import load_key_file

    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve-worker", str(db_path),
                               str(key_file), str(port)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        verifier = load_key_file(key_file).verifier
        t0 = time.perf_counter()
        result = run_monitor(f"http://127.0.0.1:{port}/log/", verifier, None, workers=workers)
        return time.perf_counter() - t0, result.entries_checked
    finally:
        server.terminate()
        server.wait(10)


# ---- PostgreSQL append -------------------------------------------------------------------

def postgres_append(admin_dsn: str, size: int, key_file: Path) -> dict[str, float] | None:
    try:
        import psycopg

        name = f"ndr_bench_{os.getpid()}"
        with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # report it, do not fail the whole run
        print(f"(PostgreSQL skipped: {exc})")
        return None
    base = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        return build_ours(f"{base}/{name}", size, key_file)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---- main --------------------------------------------------------------------------------

def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def run(args: argparse.Namespace) -> None:
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    key_file = workdir / "bench.key"
    rows: list[tuple[str, str, str]] = []
    for size in args.sizes:
        ours = workdir / f"ours-{size}.db"
        theirs = workdir / f"pymerkle-{size}.db"
        built = build_ours(f"sqlite:///{ours}", size, key_file)
        if built["appended"]:
            rows.append((f"append SQLite (bulk, {BATCH}/tx)", f"{size:,}",
                         f"{built['leaves_per_s']:,.0f} leaves/s, "
                         f"{built['hashes_stored']:,} hashes stored"))
        ours_lat = cold_proofs("ours", ours, size, args.proofs, 60)
        rows.append(("inclusion proof, ours (cold process)", f"{size:,}",
                     f"p50 {fmt_ms(statistics.median(ours_lat))}, p99 "
                     f"{fmt_ms(percentile(ours_lat, 0.99))}, n={len(ours_lat)}"))
        if not args.skip_pymerkle:
            build_s = build_pymerkle(theirs, size)
            if build_s > 1:
                rows.append(("append pymerkle SqliteTree", f"{size:,}",
                             f"{size / build_s:,.0f} leaves/s"))
            their_lat = cold_proofs("pymerkle", theirs, size, args.pymerkle_proofs,
                                    args.pymerkle_budget)
            rows.append(("inclusion proof, pymerkle SqliteTree (cold)", f"{size:,}",
                         f"p50 {fmt_ms(statistics.median(their_lat))}, p99 "
                         f"{fmt_ms(percentile(their_lat, 0.99))}, n={len(their_lat)}"))
            rows.append(("speed-up at p50 (pymerkle / ours)", f"{size:,}",
                         f"{statistics.median(their_lat) / statistics.median(ours_lat):,.0f}x"))
        if not args.skip_monitor:
            seconds, checked = monitor_replay(ours, key_file, args.workers)
            rows.append((f"monitor full replay over HTTP ({args.workers} conns)", f"{size:,}",
                         f"{seconds:.1f} s ({checked / seconds:,.0f} entries/s)"))
    if args.postgres != "skip":
        from tests.support.postgres_server import admin_url

        pg_size = min(args.pg_size, max(args.sizes))
        with admin_url(args.postgres or None) as pg_admin:
            built = postgres_append(pg_admin, pg_size, key_file)
        if built:
            rows.append((f"append PostgreSQL (bulk, {BATCH}/tx)", f"{pg_size:,}",
                         f"{built['leaves_per_s']:,.0f} leaves/s, "
                         f"{built['hashes_stored']:,} hashes stored"))
    rows.append(("peak RSS (this process or a child)", "", f"{peak_rss_mb():,.0f} MB"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    print(f"{'measure':<{widths[0]}}  {'leaves':>{widths[1]}}  result")
    for measure, leaves, result in rows:
        print(f"{measure:<{widths[0]}}  {leaves:>{widths[1]}}  {result}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--proof-worker":
        kind, path, size, count, budget = sys.argv[2:7]
        proof_worker(kind, path, int(size), int(count), float(budget))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-worker":
        serve_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000",
                        type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--quick", action="store_true", help="20k leaves, fewer proofs")
    parser.add_argument("--workdir", default="/tmp/ndr-log-bench",
                        help="database files are kept here and reused by later runs")
    parser.add_argument("--proofs", type=int, default=1000)
    parser.add_argument("--pymerkle-proofs", type=int, default=50)
    parser.add_argument("--pymerkle-budget", type=float, default=120.0,
                        help="seconds of pymerkle proofs per size at most")
    parser.add_argument("--skip-pymerkle", action="store_true")
    parser.add_argument("--skip-monitor", action="store_true")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--postgres", default=os.environ.get("NDR_BENCH_PG", ""),
        help="admin DSN for the PostgreSQL append run (default: a scratch server started "
             "here; 'skip' to skip)")
    parser.add_argument("--pg-size", type=int, default=200_000)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.proofs, args.pymerkle_proofs, args.pg_size = [20_000], 200, 20, 20_000
    run(args)


if __name__ == "__main__":
    main()
