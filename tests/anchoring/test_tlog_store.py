"""The SQL log on SQLite and PostgreSQL: appends, proofs from stored hashes, checkpoints."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, datetime

import pytest
from pymerkle import InmemoryTree
from sqlalchemy import delete, func, select, update
from tlog_helpers import ORIGIN, LogEnv, make_log_env

from anchoring import tlog
from anchoring.checkpoint import open_checkpoint, open_receipt
from anchoring.checkpointer import CheckpointLoop
from anchoring.log_store import LogEntry, LogError, LogHash, LogHead, LogRangeError


def _entries(start: int, count: int) -> list[bytes]:
    return [f'{{"n":{i}}}'.encode() for i in range(start, start + count)]


def test_append_roots_and_proofs_match_pymerkle(log_env: LogEnv) -> None:
    ref = InmemoryTree()
    batches = [1, 2, 5, 300, 1, 0, 200]
    start = 0
    for count in batches:
        entries = _entries(start, count)
        assert log_env.append(entries) == list(range(start, start + count))
        for e in entries:
            ref.append_entry(e)
        start += count
    with log_env.db.read() as session:
        assert log_env.log.size(session) == start
        with session.bind.connect() as conn:  # type: ignore[union-attr]
            stored = conn.execute(select(func.count()).select_from(LogHash)).scalar()
        assert stored == tlog.stored_hash_count(start)
        for size in (1, 2, 3, 8, 255, 256, 257, 509):
            assert log_env.log.root_at(session, size) == ref.get_root(size)
        for index, size in ((0, 1), (7, 8), (100, 509), (508, 509), (256, 300)):
            proof = log_env.log.inclusion_proof(session, index, size)
            assert proof == ref.prove_inclusion(index + 1, size).path[1:]
        for old, new in ((1, 509), (256, 257), (300, 509), (509, 509)):
            proof = log_env.log.consistency_proof(session, old, new)
            tlog.check_tree(proof, new, ref.get_root(new), old, ref.get_root(old))
        assert log_env.log.entry(session, 42) == b'{"n":42}'
        with pytest.raises(LogRangeError) as err:
            log_env.log.inclusion_proof(session, 0, 510)
        assert err.value.parameter == "size"
        with pytest.raises(LogRangeError):
            log_env.log.entry(session, 509)


def test_tiles_hold_the_spec_hashes(log_env: LogEnv) -> None:
    entries = _entries(0, 600)
    log_env.append(entries)
    leaves = [tlog.hash_leaf(e) for e in entries]
    with log_env.db.read() as session:
        assert log_env.log.hash_tile(session, 0, 1, 256) == b"".join(leaves[256:512])
        assert log_env.log.hash_tile(session, 0, 2, 88) == b"".join(leaves[512:600])
        level1 = log_env.log.hash_tile(session, 1, 0, 2)
        assert level1 == _subroot(entries[0:256]) + _subroot(entries[256:512])
        bundle = log_env.log.entries_tile(session, 2, 88)
        assert tlog.split_entry_bundle(bundle) == entries[512:600]
        with pytest.raises(LogRangeError):
            log_env.log.hash_tile(session, 0, 2, 89)
        with pytest.raises(LogRangeError):
            log_env.log.hash_tile(session, 1, 0, 3)


def _subroot(entries: list[bytes]) -> bytes:
    ref = InmemoryTree()
    for e in entries:
        ref.append_entry(e)
    return ref.get_root()


def _append_worker(url: str, worker: int, rounds: int) -> None:
    from anchoring.note import NoteSigner

    env = make_log_env(url, NoteSigner.generate(ORIGIN))
    for r in range(rounds):
        env.append([f"w{worker}-r{r}-{k}".encode() for k in range(1 + (r % 3))])
    env.db.dispose()


def _check_gap_free(env: LogEnv, expected: int) -> None:
    with env.db.read() as session:
        indexes = session.execute(select(LogEntry.idx).order_by(LogEntry.idx)).scalars().all()
        entries = session.execute(select(LogEntry.entry).order_by(LogEntry.idx)).scalars().all()
        assert indexes == list(range(expected))
        assert len(set(entries)) == expected
        ref = InmemoryTree()
        for e in entries:
            ref.append_entry(bytes(e))
        assert env.log.root_at(session, expected) == ref.get_root()


def test_concurrent_threads_get_gap_free_unique_indexes(log_env: LogEnv) -> None:
    def work(worker: int) -> None:
        for r in range(15):
            log_env.append([f"t{worker}-{r}-{k}".encode() for k in range(1 + (r % 3))])

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _check_gap_free(log_env, 4 * (5 * 1 + 5 * 2 + 5 * 3))


def test_concurrent_processes_get_gap_free_unique_indexes(log_env: LogEnv) -> None:
    ctx = multiprocessing.get_context("spawn")
    url = log_env.db.url
    procs = [ctx.Process(target=_append_worker, args=(url, w, 12)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    _check_gap_free(log_env, 3 * (4 * 1 + 4 * 2 + 4 * 3))


def test_checkpoints_are_signed_once_per_size_and_verify(log_env: LogEnv) -> None:
    empty = log_env.sign()
    assert empty is not None and empty.size == 0
    assert log_env.sign() is None
    log_env.append(_entries(0, 10))
    signed = log_env.sign()
    assert signed is not None and signed.size == 10
    assert log_env.sign() is None
    opened = open_checkpoint(signed.note, log_env.signer.verifier)
    with log_env.db.read() as session:
        assert opened.root == log_env.log.root_at(session, 10) == signed.root
        assert log_env.log.latest_checkpoint(session).size == 10  # type: ignore[union-attr]
        assert log_env.log.checkpoint_at_least(session, 1).size == 10  # type: ignore[union-attr]
        assert log_env.log.checkpoint_at_least(session, 11) is None


def test_signing_refuses_a_tree_inconsistent_with_the_last_checkpoint(log_env: LogEnv) -> None:
    log_env.append(_entries(0, 5))
    first = log_env.sign()
    assert first is not None and first.size == 5
    # History is rewritten under the log: a forked tree of 10 entries replaces the old one,
    # while the checkpoint signed at size 5 stays on record.
    with log_env.db.write() as session:
        session.execute(delete(LogEntry))
        session.execute(delete(LogHash))
        session.execute(delete(LogHead))
    # The log refuses to append onto the forked (here: emptied) tree at all (F6: never a
    # receipt it could not back with a checkpoint), and refuses to sign it.
    with pytest.raises(LogError, match="shrank"):
        log_env.append(_entries(100, 10))
    with pytest.raises(LogError, match="shrank"):
        log_env.sign()
    with log_env.db.read() as session:
        assert log_env.log.latest_checkpoint(session).size == 5  # type: ignore[union-attr]


def test_signing_refuses_a_head_root_that_stored_hashes_do_not_recompute(log_env: LogEnv) -> None:
    log_env.append(_entries(0, 7))
    with log_env.db.write() as session:
        session.execute(update(LogHead).values(root=bytes(32)))
    with pytest.raises(LogError):
        log_env.sign()


def test_two_loggers_signing_the_same_size_agree(log_env: LogEnv) -> None:
    log_env.append(_entries(0, 3))
    loops = [CheckpointLoop(log_env.db.write, log_env.log, 0.05) for _ in range(2)]
    for loop in loops:
        loop.start()
    try:
        log_env.append(_entries(3, 3))
        deadline = datetime.now(UTC).timestamp() + 20
        while datetime.now(UTC).timestamp() < deadline:
            with log_env.db.read() as session:
                latest = log_env.log.latest_checkpoint(session)
            if latest is not None and latest.size == 6:
                break
            threading.Event().wait(0.02)
        assert latest is not None and latest.size == 6
    finally:
        for loop in loops:
            loop.stop()
    assert all(loop.last_error is None for loop in loops)


def test_receipt_is_a_signed_note_naming_index_and_leaf(log_env: LogEnv) -> None:
    (leaf,) = log_env.append([b"hello"])
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    note = log_env.log.sign_receipt(leaf, tlog.hash_leaf(b"hello"), when)
    receipt = open_receipt(note, log_env.signer.verifier)
    assert (receipt.origin, receipt.index, receipt.leaf_hash, receipt.time) == (
        ORIGIN, 0, tlog.hash_leaf(b"hello"), when)


def test_entries_larger_than_65535_bytes_are_refused(log_env: LogEnv) -> None:
    with pytest.raises(ValueError):
        log_env.append([bytes(65536)])
    assert log_env.append([bytes(65535)]) == [0]
