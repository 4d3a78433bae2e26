"""Anchor cost of a federation: transactions per epoch with N members, hub vs. each member alone.

A real hub registry (SQLite, the `local` anchor journal backend, the real anchor worker on a
controlled clock) witnesses N member logs. In each epoch every member grows and submits its new
checkpoint through the hub's tlog-witness path; the hub logs each as a `member.checkpoint` leaf
and signs its own checkpoint; the anchor worker runs. Side by side, in the same run, each
member anchors its own log with its own worker (what it costs without a hub).

Prints, for each N: anchor transactions per epoch (hub; members alone), the hub leaves added per
epoch, and the witness submission time (median, p99).

    .venv/bin/python bench/federation_bench.py --members 2 20 --epochs 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, nargs="+", default=[2, 20])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--growth", type=int, default=10, help="entries per member per epoch")
    args = parser.parse_args()
    print(f"{'members':>7} {'epochs':>6} {'hub tx/epoch':>12} {'alone tx/epoch':>14} "
          f"{'hub leaves/epoch':>16} {'submit ms p50':>13} {'p99':>7}")
    for n in args.members:
        with tempfile.TemporaryDirectory() as tmp:
            r = run(n, args.epochs, args.growth, Path(tmp))
        print(f"{r['members']:>7} {r['epochs']:>6} {r['hub_tx_per_epoch']:>12.2f} "
              f"{r['alone_tx_per_epoch']:>14.2f} {r['hub_leaves_per_epoch']:>16.1f} "
              f"{r['submit_ms_p50']:>13.2f} {r['submit_ms_p99']:>7.2f}")


if __name__ == "__main__":
    main()
