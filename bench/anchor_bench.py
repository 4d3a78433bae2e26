"""Anchoring benchmark against a local EVM node (ganache from npm, on 127.0.0.1).

N writes spread over M epochs; the anchor worker runs with short epochs. Prints the number of
anchor transactions (one per epoch in which the tree grew, whatever N is), gas per anchor, and
the anchor lag — seconds from a write's signed checkpoint to the final anchor that covers it —
as p50/p99. Run from the repository root after `npm ci`:

    .venv/bin/python bench/anchor_bench.py --writes 200 --epochs 5 --epoch-seconds 2
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

from eth_account import Account  # noqa: E402
from sqlalchemy import select  # noqa: E402

from anchoring.anchor_backends.evm import EvmBackend, deploy_contract, web3_for  # noqa: E402
from anchoring.anchor_store import Anchor, AnchorBase, as_utc  # noqa: E402
from anchoring.anchor_worker import AnchorWorker  # noqa: E402
from registry.database import Database  # noqa: E402
from tests.anchoring_chain.conftest import DEPLOYER_KEY, CheckpointFeed, GanacheNode  # noqa: E402


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--epoch-seconds", type=float, default=2.0)
    parser.add_argument("--confirmations", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        node = GanacheNode(Path(tmp) / "ganache")
        node.data_dir.mkdir()
        node.start(fresh=True)
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        AnchorBase.metadata.create_all(db.engine)
        try:
            w3 = web3_for(node.url)
            deployer = Account.from_key(DEPLOYER_KEY)
            backend = EvmBackend(w3, deploy_contract(w3, deployer), deployer)
            feed = CheckpointFeed()
            lock = threading.Lock()

            def latest(session):  # type: ignore[no-untyped-def]
                with lock:
                    return feed.latest(session)

            worker = AnchorWorker(db.write, latest, backend, epoch_seconds=args.epoch_seconds,
                                  confirmations=args.confirmations, poll_seconds=0.05)
            stop = threading.Event()
            thread = threading.Thread(target=worker.run_forever, args=(stop,), daemon=True)
            thread.start()
            interval = args.epochs * args.epoch_seconds / args.writes
            # Epochs are a fixed grid (k*E seconds since the Unix epoch); start the writes on a
            # boundary so N writes fall in exactly M epochs.
            started = (time.time() // args.epoch_seconds + 1) * args.epoch_seconds
            time.sleep(max(0.0, started - time.time()))
            for i in range(args.writes):
                wake = started + (i + 0.5) * interval
                time.sleep(max(0.0, wake - time.time()))  # pacing the writers
                with lock:
                    feed.grow(1)
            writes_done = time.time()
            last_size = feed.checkpoints[-1].size

            def covered() -> bool:
                with db.read() as session:
                    return session.scalar(select(Anchor.id).where(
                        Anchor.status == "final", Anchor.size >= last_size)) is not None

            deadline = time.time() + 10 * args.epoch_seconds + 60
            while not covered():
                if time.time() > deadline:
                    raise SystemExit("the last write was never anchored")
                time.sleep(0.05)
            stop.set()
            thread.join(timeout=30)
            with db.read() as session:
                rows = [(a.size, a.tx_id, as_utc(a.confirmed_at).timestamp() if a.confirmed_at
                         else None, a.status)
                        for a in session.scalars(select(Anchor).order_by(Anchor.size))]
            gas_used = [int(w3.eth.get_transaction_receipt(r[1])["gasUsed"]) for r in rows]
        finally:
            db.dispose()
            node.stop()

        finals = [r for r in rows if r[3] == "final"]
        lags = []
        for checkpoint in feed.checkpoints:
            anchor = next(r for r in finals if r[0] >= checkpoint.size)
            lags.append(anchor[2] - checkpoint.made_at)  # type: ignore[operator]
        print(f"writes                 {args.writes} over {args.epochs} epochs of "
              f"{args.epoch_seconds:g} s ({writes_done - started:.1f} s)")
        print(f"anchor transactions    {len(rows)} ({len(finals)} final, "
              f"{sum(r[3] == 'failed' for r in rows)} failed)")
        print(f"anchored sizes         {[r[0] for r in rows]}")
        print(f"gas per anchor         {statistics.mean(gas_used):.0f} mean, "
              f"min {min(gas_used)}, max {max(gas_used)}")
        print(f"anchor lag p50         {percentile(lags, 0.50):.2f} s")
        print(f"anchor lag p99         {percentile(lags, 0.99):.2f} s")
        print(f"anchor lag max         {max(lags):.2f} s")


if __name__ == "__main__":
    main()
