"""A publish batch's opening reads, sent together (`registry.database.read_together`).

On PostgreSQL the catalogue write lock, the batch's slug lookup, the log head and the hashes
the append will read go out in one pipeline. What must not change: each statement still gets
its own snapshot (a read placed after the lock sees the commit the lock waited for); a failing
statement surfaces as the usual SQLAlchemy error; the hashes read ahead are only a guess, so
when another writer moved the log meanwhile the batch still appends at the right index and the
tree stays exact; and damaged stored hashes are still refused (never a receipt without a
checkpoint behind it). The round trips themselves are counted from libpq's own trace.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import event, select, text, update
from sqlalchemy.exc import DBAPIError

from anchoring import tlog
from anchoring.log_store import LogEntry, LogHash, LogHead, TransparencyLog
from registry.database import (
    Database,
    catalogue_write_lock,
    holding_catalogue_write_lock,
    read_together,
    serialize_catalogue_writes,
)
from tests.catalogue.helpers import metadata


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _mth(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962's Merkle tree hash, computed from the leaves alone (not the stored hashes)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:split]) + _mth(leaves[split:])).digest()


def _log_is_exact(db: Database) -> int:
    """Entries gap-free from 0, each leaf hash that of its entry, and the head's root the
    tree hash of those leaves. Returns the size."""
    with db.read() as session:
        rows = session.execute(select(LogEntry.idx, LogEntry.entry, LogEntry.leaf_hash)
                               .order_by(LogEntry.idx)).all()
        size, root = session.execute(select(LogHead.size, LogHead.root)).one()
    assert [idx for idx, _, _ in rows] == list(range(len(rows)))
    assert all(bytes(leaf) == tlog.hash_leaf(bytes(entry)) for _, entry, leaf in rows)
    assert size == len(rows)
    assert bytes(root) == _mth([bytes(leaf) for _, _, leaf in rows])
    return int(size)


# ---------------------------------------------------------------- read_together itself


def test_each_statement_reads_after_the_one_before_it(db) -> None:  # type: ignore[no-untyped-def]
    """The count placed after the lock sees the row another writer committed while this one
    waited for the lock: one statement per read, never one snapshot taken before the lock."""
    if db.is_sqlite:
        pytest.skip("PostgreSQL's advisory lock (SQLite's BEGIN IMMEDIATE waits in db.write)")
    holder_inserted, release = threading.Event(), threading.Event()

    def holder() -> None:
        with db.write() as session:
            serialize_catalogue_writes(session)
            session.execute(text("INSERT INTO log_entries (idx, entry, leaf_hash, created_at) "
                                 "VALUES (0, 'x', 'h', now())"))
            holder_inserted.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    assert holder_inserted.wait(30)
    result: list[list[Any]] = []

    def reader() -> None:
        with db.write() as session:
            lock = catalogue_write_lock(session)
            assert lock is not None
            result.extend(read_together(session, [
                lock, text("SELECT count(*) FROM log_entries")]))
            holding_catalogue_write_lock(session)

    waiting = threading.Thread(target=reader)
    waiting.start()
    with db.engine.connect() as observer:
        _wait_for(lambda: observer.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))
            .scalar_one() == 1, "the reader to wait for the lock")
    release.set()
    thread.join(30)
    waiting.join(30)
    assert result[1] == [(1,)]


def test_rows_come_back_per_statement_in_order(db) -> None:  # type: ignore[no-untyped-def]
    with db.write() as session:
        rows = read_together(session, [text("SELECT 1, 'a'"), text("SELECT 2 WHERE 1 = 0"),
                                       select(LogHead.size)])
    assert [[tuple(row) for row in part] for part in rows] == [[(1, "a")], [], []]


def test_a_failing_read_is_the_usual_error_and_nothing_stays_written(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DBAPIError), db.write() as session:
        session.execute(text("INSERT INTO log_entries (idx, entry, leaf_hash, created_at) "
                             "VALUES (0, 'x', 'h', CURRENT_TIMESTAMP)"))
        read_together(session, [text("SELECT 1"), text("SELECT * FROM no_such_table")])
    with db.read() as session:
        assert session.execute(text("SELECT count(*) FROM log_entries")).scalar_one() == 0


# ---------------------------------------------------------------- batches


def _post_together(registry, headers: dict[str, str], count: int, tag: str) -> list[Any]:  # type: ignore[no-untyped-def]
    client = registry.app.test_client()
    barrier = threading.Barrier(count)
    responses: list[Any] = [None] * count

    def post(i: int) -> None:
        barrier.wait()
        responses[i] = client.post("/api/v1/datasets", headers=headers, json={
            "metadata": metadata(title={"zh": f"{tag}{i}", "en": f"{tag} {i}"})})

    threads = [threading.Thread(target=post, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return responses


@pytest.fixture
def publishing(registry):  # type: ignore[no-untyped-def]
    assert registry.state.sequencer is not None, "batching is on by default"
    registry.state.sequencer.linger = 0.05  # wide window: the threads share batches
    registry.org("mot")
    return registry, registry.auth(registry.token("mot"))


def test_a_batch_after_another_writer_moved_the_log_appends_in_the_right_place(publishing) -> None:  # type: ignore[no-untyped-def]
    """The sequencer guesses which hashes its next append reads from where its last append
    left the log. Another writer (here a second TransparencyLog, as an import in another
    process would be) appends in between: the guess is wrong, the batch reads what it needs,
    and every leaf lands at the next index with the tree exact."""
    registry, headers = publishing
    assert {r.status_code for r in _post_together(registry, headers, 4, "first")} == {201}
    log = registry.state.services.log
    assert log._head_hint is not None  # the guess the next batch reads ahead with
    other = TransparencyLog(log.origin, log.signer)
    with registry.state.db.write() as session:
        serialize_catalogue_writes(session)
        other.append(session, [f"elsewhere {i}".encode() for i in range(5)])
    size = _log_is_exact(registry.state.db)
    responses = _post_together(registry, headers, 4, "second")
    assert {r.status_code for r in responses} == {201}
    leaves = sorted(r.get_json()["log"]["index"] for r in responses)
    assert leaves == list(range(size, size + 4))
    _log_is_exact(registry.state.db)


def test_a_damaged_hash_read_ahead_is_still_refused(publishing) -> None:  # type: ignore[no-untyped-def]
    """The read-ahead hashes come from the database like any others: one flipped byte in the
    right edge refuses the next batch (503), and nothing of it is written."""
    registry, headers = publishing
    assert {r.status_code for r in _post_together(registry, headers, 3, "before")} == {201}
    db = registry.state.db
    with db.read() as session:
        size = session.execute(select(LogHead.size)).scalar_one()
    edge = tlog.right_edge_indexes(size)[-1]
    with db.write() as session:
        stored = session.execute(select(LogHash.hash).where(LogHash.idx == edge)).scalar_one()
        damaged = bytes([stored[0] ^ 1]) + bytes(stored[1:])
        session.execute(update(LogHash).where(LogHash.idx == edge).values(hash=damaged))
    responses = _post_together(registry, headers, 3, "after")
    assert [r.status_code for r in responses] == [503] * 3
    assert all(r.headers["Content-Type"].startswith("application/problem+json")
               for r in responses)
    with db.read() as session:
        assert session.execute(select(LogHead.size)).scalar_one() == size
        assert session.execute(text("SELECT count(*) FROM log_entries")).scalar_one() == size


def test_a_batch_s_opening_reads_share_one_round_trip(publishing, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Counted from libpq's trace of the batch's own connection: the lock, the slug lookup,
    the head and the hashes go out in one round trip (one Sync), the organisation in a
    second, and the writes in a third; BEGIN and COMMIT are one each."""
    registry, headers = publishing
    if registry.state.db.is_sqlite:
        pytest.skip("PostgreSQL round trips")
    import psycopg

    assert {r.status_code for r in _post_together(registry, headers, 2, "warm")} == {201}
    trace = tmp_path / "libpq.trace"
    fd = os.open(trace, os.O_WRONLY | os.O_CREAT, 0o600)
    traced: list[Any] = []

    def on_checkout(dbapi_connection, _record, _proxy) -> None:  # type: ignore[no-untyped-def]
        if threading.current_thread().name == "ndr-publish-sequencer":
            dbapi_connection.pgconn.trace(fd)
            dbapi_connection.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
            traced.append(dbapi_connection)

    engine = registry.state.db.engine
    event.listen(engine, "checkout", on_checkout)
    try:
        batches = registry.state.sequencer.batches
        responses = _post_together(registry, headers, 4, "traced")
    finally:
        event.remove(engine, "checkout", on_checkout)
        for connection in traced:
            connection.pgconn.untrace()
        os.close(fd)
    assert {r.status_code for r in responses} == {201}
    assert registry.state.sequencer.batches - batches == 1, "the four shared one batch"
    round_trips: list[list[str]] = [[]]
    for line in trace.read_text().splitlines():
        fields = line.split("\t")
        if fields[0] != "F":
            continue
        if fields[2] == "Sync" or fields[2] == "Query":
            round_trips[-1].append(fields[3] if len(fields) > 3 else fields[2])
            round_trips.append([])
        elif fields[2] == "Parse":
            round_trips[-1].append(fields[3])
    round_trips = [trip for trip in round_trips if trip]
    assert len(round_trips) == 5, round_trips
    opening = " ".join(round_trips[1])
    for read in ("pg_advisory_xact_lock", "datasets.slug", "FROM log_head", "log_hashes"):
        assert read in opening, (read, round_trips)
    assert "BEGIN" in round_trips[0][0] and "COMMIT" in round_trips[-1][0]
