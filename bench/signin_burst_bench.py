"""A burst of sign-ins at one worker process: peak memory and time, bounded hashing against
unbounded, in one run (F4). Each argon2 check takes 64 MiB while it runs.

    .venv/bin/python bench/signin_burst_bench.py --burst 16

Prints, for each variant, the peak resident-memory growth (MiB), wall time for the burst, and
the per-sign-in latency p50/p99. The unbounded variant is the old behaviour (every request
hashes at once); "bounded" is NDR_MAX_CONCURRENT_HASHES slots (default 2).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402

from registry.auth import users  # noqa: E402
from registry.database import Database  # noqa: E402
from registry.migrate import upgrade_database  # noqa: E402


def burst(db: Database, email: str, size: int, slots: int) -> dict[str, float]:
    users._hash_slots = threading.BoundedSemaphore(slots)
    process = psutil.Process()
    baseline = process.memory_info().rss
    peak = baseline
    done = threading.Event()
    latencies: list[float] = []

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.002)

    def attempt() -> None:
        started = time.perf_counter()
        with db.read() as session:
            users.check_password(session, email, "wrong password")
        latencies.append(time.perf_counter() - started)

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [threading.Thread(target=attempt) for _ in range(size)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    ordered = sorted(latencies)
    return {"peak_growth_mib": (peak - baseline) / 2**20, "wall_s": wall,
            "p50_s": statistics.median(ordered),
            "p99_s": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", type=int, default=16)
    parser.add_argument("--slots", type=int, default=users.MAX_CONCURRENT_HASHES)
    args = parser.parse_args()
    users.HASH_WAIT_SECONDS = 600.0  # measure waiting, do not shed load
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade_database(db.engine)
        with db.write() as session:
            users.create_user(session, email="bench@example.cn", display_name="bench",
                              password="bench password 123")
        print(f"burst of {args.burst} sign-ins (argon2id, 64 MiB each), one process")
        print(f"{'variant':<22}{'peak RSS growth':>18}{'wall':>10}{'p50':>10}{'p99':>10}")
        for name, slots in ((f"bounded ({args.slots} slots)", args.slots),
                            ("unbounded (old)", args.burst)):
            result = burst(db, "bench@example.cn", args.burst, slots)
            print(f"{name:<22}{result['peak_growth_mib']:>14.0f} MiB{result['wall_s']:>9.2f}s"
                  f"{result['p50_s']:>9.2f}s{result['p99_s']:>9.2f}s")
        db.dispose()


if __name__ == "__main__":
    main()
