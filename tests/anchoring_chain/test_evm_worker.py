"""The worker and the auditor against real EVMs: py-evm in process, and a ganache node.

Faults are real: the ganache process is terminated while checkpoints keep arriving, restarted
with its chain, and restarted empty.
"""

from __future__ import annotations

import base64
import threading
import time

import pytest
from eth_account import Account
from sqlalchemy import select
from web3 import EthereumTesterProvider, Web3

from anchoring.anchor_backends import AnchorRequest, TxState
from anchoring.anchor_backends.evm import EvmBackend, deploy_contract, web3_for
from anchoring.anchor_store import Anchor, list_anchors
from anchoring.anchor_worker import AnchorWorker
from anchoring.auditor.onchain import check_anchors

from .conftest import DEPLOYER_KEY, CheckpointFeed, GanacheNode, wait_until

pytestmark = pytest.mark.evm


def anchors(db) -> list[Anchor]:  # type: ignore[no-untyped-def]
    with db.read() as session:
        rows = list(session.scalars(select(Anchor).order_by(Anchor.id)))
        session.expunge_all()
        return rows


def live_sizes(db) -> list[int]:  # type: ignore[no-untyped-def]
    return [a.size for a in anchors(db) if a.status != "failed"]


# --- py-evm in process ---------------------------------------------------------------------------

@pytest.fixture
def tester_backend():  # type: ignore[no-untyped-def]
    w3 = Web3(EthereumTesterProvider())
    account = Account.create()
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": account.address, "value": 10**20})
    return w3, EvmBackend(w3, deploy_contract(w3, account), account)


def test_waits_for_confirmations_on_py_evm(db, feed: CheckpointFeed, tester_backend) -> None:  # type: ignore[no-untyped-def]
    w3, backend = tester_backend
    worker = AnchorWorker(db.write, feed.latest, backend, epoch_seconds=0, confirmations=3)
    feed.grow(4)
    report = worker.run_once()
    assert report.submitted_size == 4 and report.finalised == []
    assert [(a.status, a.confirmations) for a in anchors(db)] == [("pending", 1)]
    w3.provider.ethereum_tester.mine_blocks(1)
    assert worker.run_once().finalised == []
    w3.provider.ethereum_tester.mine_blocks(1)
    assert worker.run_once().finalised == [4]
    final = anchors(db)[0]
    assert final.status == "final" and final.confirmations == 3
    receipt = w3.eth.get_transaction_receipt(final.tx_id)
    assert final.block_height == receipt["blockNumber"]
    assert final.block_hash == "0x" + bytes(receipt["blockHash"]).hex()
    on_chain = backend.latest_anchored(feed.origin)
    assert on_chain is not None and (on_chain.size, on_chain.root) == (4, feed.checkpoints[-1].root)


def test_reverted_transaction_is_detected_and_reanchored(db, feed, tester_backend) -> None:  # type: ignore[no-untyped-def]
    _w3, backend = tester_backend
    backend.gas_limit = 23_500  # enough to be mined, far too little to run anchor(): reverts
    worker = AnchorWorker(db.write, feed.latest, backend, epoch_seconds=0)
    feed.grow(2)
    report = worker.run_once()
    assert report.submitted_size == 2 and report.failed == [2]
    assert backend.status(report.tx_id).state is TxState.FAILED  # type: ignore[arg-type]
    assert backend.latest_anchored(feed.origin) is None
    backend.gas_limit = None  # estimation again
    report = worker.run_once()
    assert report.submitted_size == 2 and report.finalised == [2]
    assert [(a.size, a.status) for a in anchors(db)] == [(2, "failed"), (2, "final")]


def test_never_anchors_a_size_the_chain_already_holds(db, feed, tester_backend) -> None:  # type: ignore[no-untyped-def]
    _w3, backend = tester_backend
    checkpoint = feed.grow(6)
    # Someone (a previous deployment whose rows were lost) anchored 6 already.
    backend.submit(AnchorRequest.from_checkpoint_note(checkpoint.origin, 6, checkpoint.root,
                                                      checkpoint.note))
    worker = AnchorWorker(db.write, feed.latest, backend, epoch_seconds=0)
    assert worker.run_once().submitted_size is None
    assert anchors(db) == []
    feed.grow(1)
    assert worker.run_once().submitted_size == 7


# --- ganache -------------------------------------------------------------------------------------

def deploy_on(node: GanacheNode) -> EvmBackend:
    w3 = web3_for(node.url)
    deployer = Account.from_key(DEPLOYER_KEY)
    return EvmBackend(w3, deploy_contract(w3, deployer), deployer)


def test_ganache_anchor_verified_by_the_stdlib_auditor(sqlite_db, feed, ganache) -> None:  # type: ignore[no-untyped-def]
    db = sqlite_db
    backend = deploy_on(ganache)
    worker = AnchorWorker(db.write, feed.latest, backend, epoch_seconds=0, confirmations=2)
    feed.grow(9)
    assert worker.run_once().submitted_size == 9
    ganache.mine(1)
    assert worker.run_once().finalised == [9]
    with db.read() as session:
        receipts = list_anchors(session)
    assert receipts[0]["chain_id"] == 1337 and receipts[0]["backend"] == "evm"
    assert check_anchors({"anchors": receipts}, ganache.url) == []

    forged = dict(receipts[0], root=base64.b64encode(b"\x07" * 32).decode())
    problems = check_anchors({"anchors": [forged]}, ganache.url)
    assert any("contract holds root" in p for p in problems)
    wrong_size = dict(receipts[0], size=8)
    assert any("contract holds root" in p for p in check_anchors({"anchors": [wrong_size]},
                                                                   ganache.url))
    missing_tx = dict(receipts[0], tx_hash="0x" + "ab" * 32)
    assert any("not on this chain" in p for p in check_anchors({"anchors": [missing_tx]},
                                                                 ganache.url))
    wrong_block = dict(receipts[0], block_number=receipts[0]["block_number"] + 1)
    assert any("in block" in p for p in check_anchors({"anchors": [wrong_block]}, ganache.url))
    wrong_origin = dict(receipts[0], origin="someone.else/log")
    assert check_anchors({"anchors": [wrong_origin]}, ganache.url) != []
    assert check_anchors({"anchors": []}, ganache.url) == [
        "bundle carries no EVM anchor to check on chain"]
    assert any("RPC failed" in p for p in check_anchors({"anchors": receipts},
                                                         "http://127.0.0.1:9")) or \
        any("failed" in p for p in check_anchors({"anchors": receipts}, "http://127.0.0.1:9"))


def test_node_down_mid_run_backlog_drains_without_duplicates(sqlite_db, feed, ganache) -> None:  # type: ignore[no-untyped-def]
    db = sqlite_db
    backend = deploy_on(ganache)
    worker = AnchorWorker(db.write, feed.latest, backend, epoch_seconds=0.3, confirmations=1,
                          poll_seconds=0.05, backoff_initial_seconds=0.1,
                          backoff_max_seconds=0.8)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,))
    thread.start()
    try:
        feed.grow(3)
        wait_until(lambda: 3 in [a.size for a in anchors(db) if a.status == "final"], 30,
                   "first anchor final")
        ganache.stop()
        for _ in range(8):  # checkpoints keep arriving while the chain is away
            feed.grow(2)
            time.sleep(0.1)  # pacing of the writers, not a wait for a condition
        wait_until(lambda: worker.consecutive_failures >= 3, 30, "the worker to retry")
        sizes_while_down = live_sizes(db)
        ganache.start()  # same chain data directory
        final_size = feed.checkpoints[-1].size
        wait_until(lambda: final_size in [a.size for a in anchors(db) if a.status == "final"],
                   60, "the backlog to drain")
    finally:
        stop.set()
        thread.join(timeout=30)
    sizes = live_sizes(db)
    assert sizes == sorted(set(sizes)), "a size was anchored twice or out of order"
    assert all(s in sizes for s in sizes_while_down)
    on_chain = backend.latest_anchored(feed.origin)
    assert on_chain is not None and on_chain.size == final_size
    assert on_chain.root == feed.checkpoints[-1].root
    assert worker.consecutive_failures == 0
    with db.read() as session:
        assert check_anchors({"anchors": list_anchors(session, status="final")},
                             ganache.url) == []


def test_node_reset_loses_the_anchor_and_the_worker_reanchors(sqlite_db, feed, ganache) -> None:  # type: ignore[no-untyped-def]
    db = sqlite_db
    backend = deploy_on(ganache)
    address = backend.contract
    worker = AnchorWorker(db.write, feed.latest, backend, epoch_seconds=0,
                          backoff_initial_seconds=0.0)  # retry at once: no sleeping in tests
    feed.grow(5)
    assert worker.run_once().finalised == [5]
    lost_tx = anchors(db)[0].tx_id
    ganache.stop()
    ganache.start(fresh=True)  # the chain is gone
    assert backend.status(lost_tx).state is TxState.MISSING
    report = worker.run_once()
    assert report.failed == [5]  # the final anchor's transaction is gone
    assert report.chain_error is not None  # and there is no contract to re-anchor into yet
    assert deploy_on(ganache).contract == address  # same deployer, nonce 0: same address
    report = worker.run_once()
    assert report.submitted_size == 5 and report.finalised == [5]
    assert [(a.size, a.status) for a in anchors(db)] == [(5, "failed"), (5, "final")]
    with db.read() as session:
        assert check_anchors({"anchors": list_anchors(session, status="final")},
                             ganache.url) == []
        failed = list_anchors(session, status="failed")
    assert [f["error"].startswith("final anchor lost: missing") for f in failed] == [True]
