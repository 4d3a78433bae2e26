"""Benchmark of the self-audit and of the F6 guard on appends, SQLite and PostgreSQL.

    .venv/bin/python bench/audit_bench.py --leaves 100000
    .venv/bin/python bench/audit_bench.py --leaves 20000 --databases sqlite   # quick

Prints, per database:
* full sweep: leaves/s re-derived from the entries (leaf + interior hashes, entry parsing),
  and the worst-case time for a flipped byte to be found by the sweep alone at the default
  20,000 leaves per 1 s tick (sampling usually finds it sooner);
* one-entry append (the log part of an interactive write): p50/p99 with the F6 guard (right
  edge recomputes the head root, head extends the last checkpoint) side by side with the
  old path without it, in the same run;
* detection: flip one byte of a random stored hash and of a random entry, run ticks of the real
  loop (`SelfAudit.run_once`) until it raises, report seconds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.log_bench import make_entry, peak_rss_mb, percentile  # noqa: E402

ORIGIN = "bench.registry.example/log"
BATCH = 50_000


def _setup(url: str, leaves: int, workdir: Path):  # type: ignore[no-untyped-def]
    from anchoring.anchor_store import AnchorBase
    from anchoring.keys import create_key_file
    from anchoring.log_store import LogBase, TransparencyLog
    from registry.database import Database

    signer = create_key_file(workdir / f"key-{random.getrandbits(32)}", ORIGIN)
    db = Database(url)
    LogBase.metadata.create_all(db.engine)
    AnchorBase.metadata.create_all(db.engine)
    log = TransparencyLog(ORIGIN, signer)
    for start in range(0, leaves, BATCH):
        with db.write() as session:
            log.append(session, [make_entry(i) for i in range(start, min(leaves, start + BATCH))])
    with db.write() as session:
        log.sign_checkpoint_if_grown(session)
    return db, log


def _unguarded_append(log, session, entries):  # type: ignore[no-untyped-def]
    """The append as it was before F6: no check that the stored tree could still be signed."""
    from datetime import UTC, datetime

    from sqlalchemy import insert, update

    from anchoring import tlog
    from anchoring.log_store import LogEntry, LogHash, LogHead, hash_reader

    size, _ = log._head(session, lock=True)
    right_edge = hash_reader(session)(tlog.right_edge_indexes(size))
    leaves = [tlog.hash_leaf(e) for e in entries]
    result = tlog.append_leaves(size, right_edge, leaves)
    now = datetime.now(UTC)
    session.execute(insert(LogEntry), [{"idx": size + i, "entry": e, "leaf_hash": leaves[i],
                                        "created_at": now} for i, e in enumerate(entries)])
    session.execute(insert(LogHash), [{"idx": i, "hash": h} for i, h in result.stored])
    session.execute(update(LogHead).where(LogHead.id == 1).values(size=size + len(entries),
                                                                  root=result.root))


def _append_latency(db, log, start: int, count: int  # type: ignore[no-untyped-def]
                    ) -> tuple[list[float], list[float]]:
    """Alternate guarded and old appends, so both see the same database state and WAL."""
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(start, start + 2 * count):
        guarded = i % 2 == 0
        began = time.perf_counter()
        with db.write() as session:
            if guarded:
                log.append(session, [make_entry(i)])
            else:
                _unguarded_append(log, session, [make_entry(i)])
        times[0 if guarded else 1].append((time.perf_counter() - began) * 1000)
        if i % 50 == 0:
            with db.write() as session:
                log.sign_checkpoint_if_grown(session)
    return times


def _detect(db, log, what: str, rng: random.Random) -> float:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    from anchoring.log_store import open_alarms
    from anchoring.self_audit import SelfAudit, acknowledge_alarms

    with db.read() as session:
        size = log.size(session)
    if what == "entry":
        table, column, key = "log_entries", "entry", rng.randrange(size)
    else:
        from anchoring import tlog

        table, column, key = "log_hashes", "hash", rng.randrange(tlog.stored_hash_count(size))
    with db.write() as session:
        value = bytes(session.execute(text(f"SELECT {column} FROM {table} WHERE idx = :i"),
                                      {"i": key}).scalar_one())
        flipped = bytearray(value)
        flipped[len(flipped) // 2] ^= 1
        session.execute(text(f"UPDATE {table} SET {column} = :v WHERE idx = :i"),
                        {"v": bytes(flipped), "i": key})
    audit = SelfAudit(db.read, db.write, log)
    began = time.perf_counter()
    ticks = 0
    while True:
        ticks += 1
        if audit.run_once():
            break
        time.sleep(max(0.0, ticks * 1.0 - (time.perf_counter() - began)))  # 1 s ticks
    seconds = time.perf_counter() - began
    with db.write() as session:
        session.execute(text(f"UPDATE {table} SET {column} = :v WHERE idx = :i"),
                        {"v": value, "i": key})
        acknowledge_alarms(session, "bench")
    with db.read() as session:
        assert not open_alarms(session)
    return seconds


def run(name: str, url: str, leaves: int, appends: int, workdir: Path) -> list[str]:
    from anchoring.self_audit import audit_leaves

    began = time.perf_counter()
    db, log = _setup(url, leaves, workdir)
    build = time.perf_counter() - began
    began = time.perf_counter()
    edge: list[bytes] = []
    findings = []
    with db.read() as session:
        for start in range(0, leaves, 20_000):
            found, edge = audit_leaves(session, start, edge, min(leaves, start + 20_000))
            findings += found
    sweep = time.perf_counter() - began
    assert not findings, findings[:3]
    guarded, old = _append_latency(db, log, leaves, appends)
    rng = random.Random(7)
    detect_hash = [_detect(db, log, "hash", rng) for _ in range(3)]
    detect_entry = [_detect(db, log, "entry", rng) for _ in range(3)]
    db.dispose()
    ticks = -(-leaves // 20_000)
    return [
        f"{name:<10} {'build (bulk append)':<44} {leaves:>9,} leaves in {build:.1f} s",
        f"{name:<10} {'self-audit full sweep':<44} {leaves / sweep:>9,.0f} leaves/s "
        f"({sweep:.2f} s)",
        f"{name:<10} {'worst case, sweep alone (20k leaves / 1 s tick)':<44} "
        f"{ticks:>9} ticks ≈ {ticks * max(1.0, sweep / ticks):.0f} s",
        f"{name:<10} {'append 1 entry, with F6 guard':<44} "
        f"p50 {statistics.median(guarded):.2f} ms, p99 {percentile(guarded, 0.99):.2f} ms "
        f"(n={appends})",
        f"{name:<10} {'append 1 entry, old path (no guard)':<44} "
        f"p50 {statistics.median(old):.2f} ms, p99 {percentile(old, 0.99):.2f} ms "
        f"(n={appends})",
        f"{name:<10} {'flipped stored hash found after (3 runs)':<44} "
        + ", ".join(f"{s:.1f} s" for s in detect_hash),
        f"{name:<10} {'flipped entry byte found after (3 runs)':<44} "
        + ", ".join(f"{s:.1f} s" for s in detect_entry),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leaves", type=int, default=100_000)
    parser.add_argument("--appends", type=int, default=300)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for name in args.databases.split(","):
            if name == "sqlite":
                lines += run(name, f"sqlite:///{workdir / 'audit.db'}", args.leaves,
                             args.appends, workdir)
            else:
                from tests.conftest import create_postgres_database, drop_postgres_database
                from tests.support.postgres_server import PostgresServer

                server = PostgresServer().start()
                try:
                    url, db_name = create_postgres_database(server.admin_url)
                    lines += run(name, url, args.leaves, args.appends, workdir)
                    drop_postgres_database(server.admin_url, db_name)
                finally:
                    server.stop()
    lines.append(f"{'':<10} {'peak RSS':<44} {peak_rss_mb():.0f} MB")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
