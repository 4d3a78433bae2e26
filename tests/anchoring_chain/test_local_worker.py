"""The worker against the local journal, on SQLite and PostgreSQL: pacing, lease, tamper checks."""

from __future__ import annotations

import hashlib
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, update

from anchoring.anchor_backends import (
    AnchorConfig,
    AnchorRejected,
    AnchorRequest,
    TxState,
    make_anchor_backend,
)
from anchoring.anchor_backends.local_journal import LocalJournalBackend, verify_journal
from anchoring.anchor_store import (
    Anchor,
    JournalRecord,
    lease_holder,
    list_anchors,
    try_acquire_lease,
)
from anchoring.anchor_worker import LEASE_NAME, AnchorWorker, backoff_delay

from .conftest import CheckpointFeed, wait_until


class FakeClock:
    """Time the test moves by hand, so epoch pacing is checked without sleeping."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def journal(db) -> LocalJournalBackend:  # type: ignore[no-untyped-def]
    return LocalJournalBackend(db.write, Ed25519PrivateKey.generate())


def anchors(db) -> list[Anchor]:  # type: ignore[no-untyped-def]
    with db.read() as session:
        rows = list(session.scalars(select(Anchor).order_by(Anchor.id)))
        session.expunge_all()  # keep them readable after the read session rolls back
        return rows


def test_one_anchor_per_epoch_whatever_the_traffic(db, journal, feed: CheckpointFeed) -> None:  # type: ignore[no-untyped-def]
    """Epochs are a fixed grid; an epoch's growth is anchored once, when the epoch closes."""
    clock = FakeClock()
    clock.now = (clock.now // 60 + 1) * 60  # the start of an epoch
    worker = AnchorWorker(db.write, feed.latest, journal, epoch_seconds=60, confirmations=1,
                          clock=clock)
    assert worker.run_once().submitted_size is None  # empty log: nothing to anchor
    feed.grow(3)
    assert worker.run_once().submitted_size is None  # this epoch is still open
    for step in range(10):  # heavy traffic inside the same epoch
        feed.grow(5)
        clock.now += 5
        assert worker.run_once().submitted_size is None, step
    clock.now += 10  # the epoch closed: one anchor covers all of its writes
    first = worker.run_once()
    assert first.submitted_size == 53 and first.finalised == [53]
    feed.grow(2)  # growth in the next epoch waits for that epoch to close
    clock.now += 30
    assert worker.run_once().submitted_size is None
    clock.now += 30
    assert worker.run_once().submitted_size == 55
    clock.now += 120  # no growth: no anchor
    assert worker.run_once().submitted_size is None
    rows = anchors(db)
    assert [(a.size, a.status, a.backend) for a in rows] == [(53, "final", "local-journal"),
                                                             (55, "final", "local-journal")]
    assert rows[1].root == feed.checkpoints[-1].root
    assert rows[1].checkpoint_sha256 == hashlib.sha256(
        feed.checkpoints[-1].note.encode()).digest()
    assert rows[1].checkpoint_note == feed.checkpoints[-1].note
    with db.read() as session:
        assert verify_journal(session, journal.public_key) == []
        listed = list_anchors(session)
    assert [a["size"] for a in listed] == [55, 53]
    assert listed[0]["backend"] == "local-journal" and listed[0]["status"] == "final"


def test_journal_refuses_non_increasing_sizes(journal, feed: CheckpointFeed) -> None:  # type: ignore[no-untyped-def]
    checkpoint = feed.grow(4)
    request = AnchorRequest.from_checkpoint_note(checkpoint.origin, checkpoint.size,
                                                 checkpoint.root, checkpoint.note)
    journal.submit(request)
    with pytest.raises(AnchorRejected):
        journal.submit(request)
    assert journal.latest_anchored(feed.origin).size == 4  # type: ignore[union-attr]


def test_tampering_with_the_journal_is_detected(db, journal, feed: CheckpointFeed) -> None:  # type: ignore[no-untyped-def]
    worker = AnchorWorker(db.write, feed.latest, journal, epoch_seconds=0)
    for _ in range(3):
        feed.grow(2)
        assert worker.run_once().submitted_size is not None
    with db.write() as session:
        session.execute(update(JournalRecord).where(JournalRecord.seq == 2)
                        .values(root=hashlib.sha256(b"forged").digest()))
    with db.read() as session:
        problems = verify_journal(session, journal.public_key)
    assert any("record 2: stored hash" in p for p in problems)
    assert any("record 3: prev hash" in p for p in problems)
    assert any("record 2: signature" in p for p in problems)
    second = anchors(db)[1]
    assert journal.status(second.tx_id).state is TxState.FAILED


def test_deleted_journal_record_fails_the_final_anchor_and_reanchors(db, journal, feed) -> None:  # type: ignore[no-untyped-def]
    worker = AnchorWorker(db.write, feed.latest, journal, epoch_seconds=0)
    feed.grow(2)
    worker.run_once()
    with db.write() as session:
        session.query(JournalRecord).delete()
    report = worker.run_once()
    assert report.failed == [2] and report.submitted_size == 2
    assert [(a.size, a.status) for a in anchors(db)] == [(2, "failed"), (2, "final")]


def test_only_one_worker_holds_the_lease(db, journal, feed: CheckpointFeed) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    a = AnchorWorker(db.write, feed.latest, journal, epoch_seconds=0, worker_id="host-a",
                     lease_ttl_seconds=30, clock=clock)
    b = AnchorWorker(db.write, feed.latest, journal, epoch_seconds=0, worker_id="host-b",
                     lease_ttl_seconds=30, clock=clock)
    feed.grow(1)
    assert a.run_once().leader is True
    feed.grow(1)
    assert b.run_once().leader is False
    clock.now += 10
    assert a.run_once().leader is True  # renewal
    clock.now += 31  # a is gone; its lease expires
    feed.grow(1)
    report = b.run_once()
    assert report.leader is True and report.submitted_size == 3
    assert a.run_once().leader is False
    with db.read() as session:
        assert lease_holder(session, LEASE_NAME, int(clock.now * 1000)) == "host-b"
    assert [a.size for a in anchors(db)] == [1, 2, 3]  # a anchored 2 while renewing


def test_lease_is_exclusive_under_concurrent_claims(db) -> None:  # type: ignore[no-untyped-def]
    winners: list[str] = []
    barrier = threading.Barrier(6)

    def claim(name: str) -> None:
        barrier.wait()
        with db.write() as session:
            if try_acquire_lease(session, LEASE_NAME, name, 1_000, 30_000):
                winners.append(name)

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(winners) == 1


def test_run_forever_stops_and_releases_the_lease(db, journal, feed: CheckpointFeed) -> None:  # type: ignore[no-untyped-def]
    worker = AnchorWorker(db.write, feed.latest, journal, epoch_seconds=0.05, poll_seconds=0.02)
    feed.grow(2)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,))
    thread.start()
    try:
        wait_until(lambda: any(a.status == "final" for a in anchors(db)), 30, "first anchor")
        feed.grow(3)
        wait_until(lambda: any(a.size == 5 and a.status == "final" for a in anchors(db)), 30,
                   "anchor of size 5")
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    with db.read() as session:
        assert lease_holder(session, LEASE_NAME, 10**15 // 10**3) is None


def test_factory_builds_the_local_journal_from_environment(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = AnchorConfig.from_env({"NDR_ANCHOR_BACKEND": "local",
                                    "NDR_ANCHOR_EPOCH_SECONDS": "2",
                                    "NDR_ANCHOR_CONFIRMATIONS": "3"})
    assert (config.epoch_seconds, config.confirmations) == (2.0, 3)
    backend = make_anchor_backend(config, write_session_factory=db.write, var_dir=tmp_path)
    assert backend.name == "local-journal"
    key_file = tmp_path / "anchor-journal.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    again = make_anchor_backend(config, write_session_factory=db.write, var_dir=tmp_path)
    assert again.chain_id == backend.chain_id  # same key reloaded
    with pytest.raises(ValueError):
        AnchorConfig.from_env({"NDR_ANCHOR_BACKEND": "blockchain"})
    with pytest.raises(ValueError, match="NDR_EVM_RPC_URL"):
        make_anchor_backend(AnchorConfig.from_env({"NDR_ANCHOR_BACKEND": "evm"}))


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_delay(n, 1.0, 10.0) for n in range(6)] == [0.0, 1.0, 2.0, 4.0, 8.0, 10.0]
