"""Concurrent publishes of one process, sequenced in small batches (the way Tessera batches).

Why: every write takes the catalogue's write lock (SQLite's `BEGIN IMMEDIATE`, PostgreSQL's
advisory lock) and ends in a commit, which is an fsync. One transaction per request made
concurrent publishers queue for the lock one at a time — on SQLite by sleeping in the busy
handler — so 8 clients got about 13 acknowledged writes/s with a p99 of seconds. Here the
request threads hand their already-validated work to one sequencer thread per process, which
takes everything that arrives within a few milliseconds, and once it holds the write lock
whatever else queued meanwhile (at most `max_batch` items in all), records
it in ONE transaction — consecutive leaf indexes, one commit — and only then wakes each
request thread with its own result (its receipt is in it).

How a batch is recorded: each item is first *planned* (its database checks: organisation,
slug, external id, If-Match, Idempotency-Key). Planning only reads, so an item refused there (a
conflict, a stale If-Match, a failed validation: a `Problem`) gets its own 4xx and the others
go on — no savepoint needed, and none of its round trips. An item that needs what an earlier
item of the batch is about to write (the same dataset, slug, external id or key) waits for the
next batch. Then the planned versions of the whole batch are recorded together
(`actions.record_plans`: one log append, one executemany per table, one index update), and
each answer (with its receipt) is made. Should anything else fail (a database error, which on
PostgreSQL aborts the transaction), the batch is rolled back and every item still unanswered
is retried alone, in a transaction of its own: one request's failure never fails another.

What stays true:
* Nobody gets an answer before the commit: a crash before it loses only unacknowledged writes.
* Indexes stay gap-free across processes: batches of different gunicorn workers still take
  the database write lock in turn, and the log's head row is locked by each append.
* Answers are made inside the transaction as plain data (no ORM objects), so nothing a
  client gets can be expired by another item's rollback or by the end of the session.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from registry.database import (
    Database,
    catalogue_write_lock,
    holding_catalogue_write_lock,
    read_together,
)
from registry.datasets.actions import (
    Answer,
    BatchClaims,
    ClaimedInBatch,
    Plan,
    PlanWork,
    Services,
    record_plans,
)
from registry.problems import Problem

log = logging.getLogger(__name__)


@dataclass(eq=False)  # identity: a pending write is itself, whatever it holds
class _Pending:
    work: PlanWork
    slugs: tuple[str, ...] = ()  # the slugs it will want: looked up once for the batch
    done: threading.Event = field(default_factory=threading.Event)
    result: Answer | None = None
    error: BaseException | None = None


def _stopped() -> Problem:
    """The process is shutting down; the write was not recorded (the client may retry)."""
    return Problem(503, "Shutting down", "the registry is restarting; this write was not "
                   "recorded, retry it", "shutting-down", headers={"Retry-After": "1"})


class PublishSequencer:
    """One per process: batches the writes submitted by its request threads."""

    def __init__(self, db: Database, services: Services, *, max_batch: int = 32,
                 linger: float = 0.002, lock_file: Path | None = None) -> None:
        self.db = db
        self.services = services
        self.max_batch = max(1, max_batch)
        self.linger = max(0.0, linger)
        self.lock_file = lock_file
        self._queue: queue.Queue[_Pending] = queue.Queue()
        self._carried: list[_Pending] = []  # deferred by a claim: first in the next batch
        self._stop = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.batches = 0  # committed batches and items (for the bench and tests)
        self.items = 0

    # -- request threads -------------------------------------------------------------------

    def submit(self, work: PlanWork, slugs: Sequence[str] = ()) -> Answer:
        """Plan and record `work` in the next batch; return its answer once the batch
        committed, or raise its own error (a failed item) or the batch's (a failed commit).
        `slugs`: those the write will want, so the batch looks them all up at once."""
        self._ensure_running()
        pending = _Pending(work, tuple(slugs))
        self._queue.put(pending)
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def _ensure_running(self) -> None:
        if self._stop.is_set():
            raise _stopped()
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._start_lock:  # first use in this process (gunicorn forks after import)
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="ndr-publish-sequencer",
                                                daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        leftovers, self._carried = self._carried, []
        while True:
            try:
                leftovers.append(self._queue.get_nowait())
            except queue.Empty:
                break
        for pending in leftovers:  # whoever still waits learns the write did not happen
            pending.error = _stopped()
            pending.done.set()

    # -- the sequencer thread --------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._carried:
                first, rest = self._carried[0], self._carried[1:]
                self._carried = []
            else:
                try:
                    first, rest = self._queue.get(timeout=0.2), []
                except queue.Empty:
                    continue
            self._record(self._collect([first, *rest]))

    def _collect(self, batch: list[_Pending]) -> list[_Pending]:
        """What is waiting, plus what arrives within `linger` seconds (at most max_batch)."""
        deadline = time.monotonic() + self.linger
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self._queue.get(timeout=remaining) if remaining > 0
                             else self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _top_up(self, batch: list[_Pending]) -> None:
        """Once the batch holds the write lock, add what is already queued (no waiting): under
        contention, the writes that queued while other processes recorded theirs."""
        while len(batch) < self.max_batch:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def _record(self, batch: list[_Pending]) -> None:
        planned: list[tuple[_Pending, Plan]] = []
        try:
            with self._turn(), self.db.write() as session:
                self._top_up(batch)  # what arrived while this batch waited for its turn
                claims = self._open(session, {slug for p in batch for slug in p.slugs})
                for pending in batch:
                    try:
                        planned.append((pending, pending.work(session, claims)))
                    except ClaimedInBatch:
                        self._carried.append(pending)
                    except Problem as problem:  # this item's own 4xx; planning wrote nothing
                        pending.error = problem
                answers = record_plans(session, self.services, [plan for _, plan in planned])
            for (pending, _), answer in zip(planned, answers, strict=True):
                pending.result = answer
            self.batches += 1
            self.items += len(planned)
        except Exception as exc:  # rolled back: nothing of the batch happened
            log.warning("a publish batch of %d failed (%s); recording its items one by one",
                        len(batch), exc)
            self._carried = [p for p in self._carried if p not in batch]
            for pending in batch:
                if pending.error is None:
                    self._record_alone(pending)
        finally:
            for pending in batch:
                if pending not in self._carried:
                    pending.done.set()

    def _open(self, session: Session, slugs: set[str]) -> BatchClaims:
        """Take the write lock, look up the batch's slugs and read the log head: one round
        trip on PostgreSQL (`read_together`), in that order, so both reads see the last
        batch's commit. Everything after the lock is read under it, as before."""
        lock = catalogue_write_lock(session)
        log_reads = self.services.log.head_for_append_statements(session)
        statements = [*([lock] if lock is not None else []),
                      BatchClaims.slugs_statement(slugs), *log_reads]
        rows = read_together(session, statements)
        if lock is not None:
            holding_catalogue_write_lock(session)
        first_log_read = len(rows) - len(log_reads)
        claims = BatchClaims()
        claims.note_slugs(slugs, (slug for (slug,) in rows[first_log_read - 1]))
        self.services.log.use_head_for_append(session, rows[first_log_read:])
        return claims

    def _record_alone(self, pending: _Pending) -> None:
        """The unbatched path, for the items of a batch that failed as a whole."""
        pending.result = pending.error = None
        try:
            with self._turn(), self.db.write() as session:
                (pending.result,) = record_plans(session, self.services,
                                                 [pending.work(session, None)])
        except Exception as exc:
            pending.result, pending.error = None, exc

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """On SQLite, wait for the other processes' batches in the kernel (an advisory file
        lock) instead of SQLite's busy handler, which sleeps and polls: a waiting batch
        starts the moment the previous one commits."""
        if self.lock_file is None:
            yield
            return
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def sqlite_lock_file(db: Database) -> Path | None:
    """The advisory lock file beside a SQLite database (None for PostgreSQL, whose advisory
    lock already queues waiters)."""
    if not db.is_sqlite:
        return None
    database = db.engine.url.database
    if not database or database == ":memory:":
        return None
    return Path(database).with_name(Path(database).name + ".publish-lock")
