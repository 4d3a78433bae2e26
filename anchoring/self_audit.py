"""The server audits itself: re-derive what the database stores from the entries alone.

A background loop (beside the checkpoint loop) that, every tick:

1. sweeps the next batch of leaves in order: parses each entry with the auditor's format
   module, recomputes its leaf hash and every interior hash the batch completes (from the
   entries alone, extending a right edge it keeps itself), and compares them with
   ``log_entries.leaf_hash`` and ``log_hashes``. The position and that right edge are
   persisted, so a restart resumes; at the head it starts the next sweep from leaf 0, so the
   whole tree is covered again and again;
2. samples random leaves and random interior hashes (each against its two children), so
   damage anywhere is likely found before the sweep gets there;
3. checks the head and the checkpoints: every stored checkpoint row matches its signed note,
   its root recomputes from the stored hashes, and the head extends the latest one;
4. runs the catalogue checks the registry plugs in (versions against their entries).

A finding becomes an alarm row in ``log_audit_alarms``. While one is open, every process of
the registry refuses to append or sign (``log_store.require_not_halted``), ``/readyz`` is 503
naming the leaf, and ``/metrics`` shows it, until an operator acknowledges it
(``ndr log audit --acknowledge``) after restoring the database.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from anchoring import tlog
from anchoring.anchor_store import Anchor, lease_holder, release_lease, try_acquire_lease
from anchoring.auditor.entry import EntryError, parse_entry
from anchoring.log_store import (
    LogAuditAlarm,
    LogAuditProgress,
    LogCheckpoint,
    LogEntry,
    LogError,
    LogHash,
    TransparencyLog,
    hash_reader,
    open_alarms,
)

log = logging.getLogger(__name__)

_PROGRESS_ID = 1
LEASE_NAME = "self-audit"
_CHECKPOINTS_PER_TICK = 64
# Per tick, a sweep covers at least this many leaves and catalogue versions (see _per_tick).
MIN_LEAVES_PER_TICK = 256
MIN_CATALOGUE_PER_TICK = 64
# One flipped entry also changes every interior hash above it: record the first few findings
# of a tick (the lowest leaf first), not a cascade of alarms for one damaged byte.
_MAX_FINDINGS_PER_TICK = 20


@dataclass(frozen=True)
class Finding:
    """One mismatch: what check found it, at which leaf (if any), and what differs."""

    kind: str
    detail: str
    leaf_index: int | None = None


# The registry's catalogue checks: (session, resume key, limit) -> (findings, next key); an
# empty next key means the catalogue sweep wrapped around.
CatalogueAuditor = Callable[[Session, str, int], tuple[list[Finding], str]]


@dataclass
class Progress:
    next_leaf: int
    right_edge: list[bytes]
    catalogue_after: str
    sweeps: int

    def encoded_edge(self) -> bytes:
        return b"".join(self.right_edge)


def _decode_edge(data: bytes) -> list[bytes]:
    return [bytes(data[i:i + tlog.HASH_SIZE]) for i in range(0, len(data), tlog.HASH_SIZE)]


def load_progress(session: Session) -> Progress:
    row = session.get(LogAuditProgress, _PROGRESS_ID)
    if row is None:
        return Progress(0, [], "", 0)
    return Progress(int(row.next_leaf), _decode_edge(bytes(row.right_edge)),
                    row.catalogue_after, int(row.sweeps))


def audit_leaves(session: Session, start: int, right_edge: list[bytes], end: int
                 ) -> tuple[list[Finding], list[bytes]]:
    """Re-derive leaves [start, end) and every stored hash they complete; compare.

    `right_edge` is the compact range of [0, start) derived earlier from the entries. Returns
    the findings and the right edge of [0, end) - from the entries, not from the database.
    """
    findings: list[Finding] = []
    rows = session.execute(select(LogEntry.idx, LogEntry.entry, LogEntry.leaf_hash).where(
        LogEntry.idx >= start, LogEntry.idx < end).order_by(LogEntry.idx)).all()
    by_index = {int(idx): (bytes(entry), bytes(leaf)) for idx, entry, leaf in rows}
    leaves = []
    for index in range(start, end):
        if index not in by_index:
            findings.append(Finding("entry missing", f"log_entries has no row {index}", index))
            return findings, right_edge
        entry, stored_leaf = by_index[index]
        leaf = tlog.hash_leaf(entry)
        leaves.append(leaf)
        if stored_leaf != leaf:
            findings.append(Finding("leaf hash mismatch", "log_entries.leaf_hash is not "
                                    "SHA-256(0x00 || entry)", index))
        try:
            parse_entry(entry)
        except EntryError as exc:
            findings.append(Finding("malformed entry", str(exc), index))
    result = tlog.append_leaves(start, right_edge, leaves)
    lo, hi = tlog.stored_hash_index(0, start), tlog.stored_hash_count(end)
    stored = {int(i): bytes(h) for i, h in session.execute(
        select(LogHash.idx, LogHash.hash).where(LogHash.idx >= lo, LogHash.idx < hi))}
    for position, expected in result.stored:
        if stored.get(position) != expected:
            level, n = tlog.split_stored_hash_index(position)
            leaf_index = ((n + 1) << level) - 1  # the record that completed this subtree
            what = "missing" if position not in stored else "differs from the one derived " \
                                                            "from the entries"
            findings.append(Finding("stored hash mismatch", f"log_hashes row {position} "
                                    f"(level {level}, node {n}) {what}", leaf_index))
    return findings, result.right_edge


def sample_leaves(session: Session, size: int, count: int, rng: random.Random
                  ) -> list[Finding]:
    """Random leaves: entry, leaf_hash column and stored level-0 hash must agree."""
    if size == 0:
        return []
    indexes = sorted({rng.randrange(size) for _ in range(count)})
    rows = {int(i): (bytes(e), bytes(h)) for i, e, h in session.execute(
        select(LogEntry.idx, LogEntry.entry, LogEntry.leaf_hash).where(
            LogEntry.idx.in_(indexes)))}
    stored = dict(zip(indexes, _read_optional(session, [tlog.stored_hash_index(0, i)
                                                         for i in indexes]), strict=True))
    findings = []
    for index in indexes:
        if index not in rows:
            findings.append(Finding("entry missing", f"log_entries has no row {index}", index))
            continue
        entry, leaf_column = rows[index]
        leaf = tlog.hash_leaf(entry)
        if leaf != leaf_column or leaf != stored[index]:
            findings.append(Finding("leaf hash mismatch", "entry, leaf_hash column and stored "
                                    "level-0 hash disagree", index))
        try:
            parse_entry(entry)
        except EntryError as exc:
            findings.append(Finding("malformed entry", str(exc), index))
    return findings


def _read_optional(session: Session, indexes: list[int]) -> list[bytes | None]:
    if not indexes:
        return []
    found = {int(i): bytes(h) for i, h in session.execute(
        select(LogHash.idx, LogHash.hash).where(LogHash.idx.in_(indexes)))}
    return [found.get(i) for i in indexes]


def sample_interior(session: Session, size: int, count: int, rng: random.Random
                    ) -> list[Finding]:
    """Random interior stored hashes, each recomputed from its two stored children."""
    findings = []
    nodes = []
    for _ in range(count):
        if size < 2:
            break
        level = rng.randrange(1, size.bit_length())
        complete = size >> level
        if complete == 0:
            continue
        nodes.append((level, rng.randrange(complete)))
    wanted = [(tlog.stored_hash_index(lv, n), tlog.stored_hash_index(lv - 1, 2 * n),
               tlog.stored_hash_index(lv - 1, 2 * n + 1)) for lv, n in nodes]
    flat = _read_optional(session, [i for triple in wanted for i in triple])
    for k, (level, n) in enumerate(nodes):
        parent, left, right = flat[3 * k:3 * k + 3]
        if parent is None or left is None or right is None or \
                tlog.hash_children(left, right) != parent:
            findings.append(Finding("stored hash mismatch", f"interior hash (level {level}, "
                                    f"node {n}) is not the hash of its children",
                                    ((n + 1) << level) - 1))
    return findings


def audit_head_and_checkpoints(session: Session, log: TransparencyLog, after_size: int
                               ) -> tuple[list[Finding], int]:
    """Head root recomputes and extends the latest checkpoint; a batch of checkpoint rows
    (sizes above `after_size`) match their signed notes and recompute. Returns the next
    `after_size` (0 when the batch reached the newest checkpoint).

    Order matters under concurrent writes on PostgreSQL (READ COMMITTED: each statement sees
    the newest commits): checkpoints are read before the head, and the head's size and root
    in one statement, so every checkpoint read is at or below the head read."""
    findings = []
    reader = hash_reader(session)
    try:
        chain = log.key_chain(session)  # checkpoints signed before a key rotation stay valid
    except LogError as exc:
        findings.append(Finding("key rotation mismatch", str(exc), None))
        chain = [log.signer.verifier]
    latest = log.latest_checkpoint(session)
    rows = session.scalars(select(LogCheckpoint).where(LogCheckpoint.size > after_size)
                           .order_by(LogCheckpoint.size).limit(_CHECKPOINTS_PER_TICK)).all()
    head = session.connection().exec_driver_sql(
        "SELECT size, root FROM log_head WHERE id = 1").first()
    size, head_root = (0, None) if head is None else (int(head[0]), bytes(head[1]))
    try:
        if head_root is not None and tlog.tree_hash(size, reader) != head_root:
            findings.append(Finding("head mismatch", f"log_head root is not the root of the "
                                    f"stored hashes at size {size}", size - 1 if size else None))
        if head_root is not None and latest is not None:
            log.require_extends(session, size, head_root, reader, latest)
    except (LogError, tlog.ProofError) as exc:
        findings.append(Finding("head mismatch", str(exc), size - 1 if size else None))
    for row in rows:
        checkpoint = log.signed_row(row, log.origin)
        try:
            log.check_checkpoint_row(checkpoint, chain)
            if checkpoint.size > size:
                raise LogError(f"checkpoint at size {checkpoint.size} is beyond the log "
                               f"({size})")
            if tlog.tree_hash(checkpoint.size, reader) != checkpoint.root:
                raise LogError(f"stored hashes do not recompute the checkpoint root at size "
                               f"{checkpoint.size}")
        except (LogError, tlog.ProofError) as exc:
            findings.append(Finding("checkpoint mismatch", str(exc),
                                    checkpoint.size - 1 if checkpoint.size else None))
    next_after = int(rows[-1].size) if len(rows) == _CHECKPOINTS_PER_TICK else 0
    return findings, next_after


def audit_anchors(session: Session, log: TransparencyLog, after_id: int
                  ) -> tuple[list[Finding], int]:
    """A batch of live anchor rows: each names the root the stored hashes give at its size,
    and carries the very checkpoint note the log signed at that size."""
    findings = []
    reader = hash_reader(session)
    rows = session.scalars(select(Anchor).where(
        Anchor.id > after_id, Anchor.status != "failed", Anchor.origin == log.origin)
        .order_by(Anchor.id).limit(_CHECKPOINTS_PER_TICK)).all()
    size = log.size(session)  # after the anchors: every anchor read is at or below it
    for anchor in rows:
        try:
            if anchor.size > size:
                raise LogError(f"anchor {anchor.id} is for size {anchor.size}, beyond the log")
            if tlog.tree_hash(anchor.size, reader) != bytes(anchor.root):
                raise LogError(f"anchor {anchor.id} root is not the stored root at size "
                               f"{anchor.size}")
            checkpoint = log.checkpoint_at(session, anchor.size)
            if checkpoint is None or checkpoint.note != anchor.checkpoint_note or \
                    hashlib.sha256(anchor.checkpoint_note.encode()).digest() != \
                    bytes(anchor.checkpoint_sha256):
                raise LogError(f"anchor {anchor.id} does not carry the checkpoint the log "
                               f"signed at size {anchor.size}")
        except (LogError, tlog.ProofError) as exc:
            findings.append(Finding("anchor mismatch", str(exc), anchor.size - 1))
    next_after = int(rows[-1].id) if len(rows) == _CHECKPOINTS_PER_TICK else 0
    return findings, next_after


class SelfAudit:
    """The loop. Several processes may run it: progress is saved with a compare-and-set, so
    two auditors never fight over the position (one of them just re-checks a batch)."""

    def __init__(self, read_session_factory: Callable[[], AbstractContextManager[Session]],
                 write_session_factory: Callable[[], AbstractContextManager[Session]],
                 log: TransparencyLog, *, catalogue: CatalogueAuditor | None = None,
                 interval_seconds: float = 1.0, leaves_per_tick: int = 20_000,
                 samples_per_tick: int = 64, catalogue_per_tick: int = 5_000,
                 sweep_seconds: float = 30.0, seed: int | None = None) -> None:
        self._read = read_session_factory
        self._write = write_session_factory
        self._log = log
        self._catalogue = catalogue
        self._interval = interval_seconds
        self._leaves = leaves_per_tick
        self._samples = samples_per_tick
        self._catalogue_batch = catalogue_per_tick
        self._sweep_seconds = max(sweep_seconds, interval_seconds)
        self._lease_renewed = -1.0e9  # time.monotonic() of our last lease write
        self._rng = random.Random(seed)
        self._checkpoints_after = 0
        self._anchors_after = 0
        self._holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: BaseException | None = None
        self.last_run: datetime | None = None
        self.leaves_verified = 0

    def _holds_lease(self) -> bool:
        """One process sweeps at a time (a database lease, as the anchor worker has): several
        gunicorn workers would otherwise each spend a core re-deriving the same leaves.

        The lease is renewed a third of the way through its term, and a process that does not
        hold it first reads whether another's still runs: a lease write is a write
        transaction, which on SQLite queues behind (and delays) every publish."""
        ttl = max(10.0, 5 * self._interval)
        if time.monotonic() - self._lease_renewed < ttl / 3:
            return True
        now_ms = int(time.time() * 1000)
        with self._read() as session:
            holder = lease_holder(session, LEASE_NAME, now_ms)
        if holder is not None and holder != self._holder:
            return False
        renewed_at = time.monotonic()
        with self._write() as session:
            held = try_acquire_lease(session, LEASE_NAME, self._holder, now_ms,
                                     int(ttl * 1000))
        self._lease_renewed = renewed_at if held else -1.0e9
        return held

    def _per_tick(self, size: int, most: int, least: int) -> int:
        """How much of a sweep one tick does: enough to cover ``size`` items once per
        ``sweep_seconds`` (so a flipped byte anywhere is found within that time plus a tick),
        at least ``least`` (a small log is covered in one tick), at most ``most``. A log of a
        few thousand leaves is thus not re-derived every second, which under load took a
        core's worth of Ed25519 receipt checks away from publishing."""
        wanted = -(-size * self._interval // self._sweep_seconds)
        return int(min(most, max(least, wanted)))

    def run_once(self) -> list[Finding]:
        """One tick; returns what it found (already recorded as alarms). Without the lease
        (another process sweeps) it only samples."""
        if not self._holds_lease():
            with self._read() as session:
                size = self._log.size(session)
                findings = sample_leaves(session, size, self._samples, self._rng)
                findings += sample_interior(session, size, self._samples, self._rng)
            if findings:
                self.raise_alarms(findings[:_MAX_FINDINGS_PER_TICK])
            self.last_run = datetime.now(UTC)
            return findings
        with self._read() as session:
            progress = load_progress(session)
            size = self._log.size(session)
            start = progress.next_leaf if progress.next_leaf <= size else 0
            edge = progress.right_edge if start == progress.next_leaf else []
            if len(edge) != start.bit_count():  # unusable saved edge: sweep from the start
                start, edge = 0, []
            end = min(size, start + self._per_tick(size, self._leaves, MIN_LEAVES_PER_TICK))
            findings, new_edge = audit_leaves(session, start, edge, end)
            findings += sample_leaves(session, size, self._samples, self._rng)
            findings += sample_interior(session, size, self._samples, self._rng)
            head, self._checkpoints_after = audit_head_and_checkpoints(
                session, self._log, self._checkpoints_after)
            findings += head
            anchors, self._anchors_after = audit_anchors(session, self._log,
                                                         self._anchors_after)
            findings += anchors
            catalogue_after = progress.catalogue_after
            if self._catalogue is not None:
                found, catalogue_after = self._catalogue(
                    session, progress.catalogue_after,
                    self._per_tick(size, self._catalogue_batch, MIN_CATALOGUE_PER_TICK))
                findings += found
        wrapped = end >= size > 0
        new = Progress(0 if wrapped else end, [] if wrapped else new_edge, catalogue_after,
                       progress.sweeps + (1 if wrapped else 0))
        if any(f.kind in ("entry missing",) for f in findings):
            new = Progress(0, [], catalogue_after, progress.sweeps)
        self._save(progress, new)
        if findings:
            self.raise_alarms(findings[:_MAX_FINDINGS_PER_TICK])
        self.leaves_verified = end
        self.last_run = datetime.now(UTC)
        return findings

    def _save(self, old: Progress, new: Progress) -> None:
        now = datetime.now(UTC)
        with self._write() as session:
            row = session.get(LogAuditProgress, _PROGRESS_ID)
            if row is None:
                session.add(LogAuditProgress(
                    id=_PROGRESS_ID, next_leaf=new.next_leaf, right_edge=new.encoded_edge(),
                    catalogue_after=new.catalogue_after, sweeps=new.sweeps, updated_at=now))
                return
            session.execute(update(LogAuditProgress).where(
                LogAuditProgress.id == _PROGRESS_ID,
                LogAuditProgress.next_leaf == old.next_leaf,
                LogAuditProgress.sweeps == old.sweeps).values(
                next_leaf=new.next_leaf, right_edge=new.encoded_edge(),
                catalogue_after=new.catalogue_after, sweeps=new.sweeps, updated_at=now))

    def raise_alarms(self, findings: list[Finding]) -> None:
        """Record each finding once (an open alarm of the same kind and leaf is not repeated)."""
        with self._write() as session:
            known = {(a.kind, a.leaf_index) for a in open_alarms(session, limit=10_000)}
            for finding in findings:
                if (finding.kind, finding.leaf_index) in known:
                    continue
                known.add((finding.kind, finding.leaf_index))
                log.critical("self-audit: %s at leaf %s: %s", finding.kind,
                             finding.leaf_index, finding.detail)
                session.add(LogAuditAlarm(detected_at=datetime.now(UTC), kind=finding.kind,
                                          leaf_index=finding.leaf_index,
                                          detail=finding.detail[:2000]))

    def run_full(self) -> list[Finding]:
        """Audit everything now, from leaf 0 (the operator's `ndr log audit`); no alarms."""
        findings: list[Finding] = []
        with self._read() as session:
            size = self._log.size(session)
            edge: list[bytes] = []
            for start in range(0, size, self._leaves):
                found, edge = audit_leaves(session, start, edge,
                                           min(size, start + self._leaves))
                findings += found
            after = 0
            while True:
                found, after = audit_head_and_checkpoints(session, self._log, after)
                findings += found
                if after == 0:
                    break
            while True:
                found, after = audit_anchors(session, self._log, after)
                findings += found
                if after == 0:
                    break
            if self._catalogue is not None:
                key = ""
                while True:
                    found, key = self._catalogue(session, key, self._catalogue_batch)
                    findings += found
                    if not key:
                        break
        return findings

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                self.last_error = None
            except Exception as exc:  # keep auditing; a failing audit is itself reported
                self.last_error = exc
                log.exception("self-audit tick failed")
            self._stop.wait(self._interval)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ndr-self-audit", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._lease_renewed = -1.0e9
        try:  # hand the lease over now rather than at expiry
            with self._write() as session:
                release_lease(session, LEASE_NAME, self._holder)
        except Exception:  # shutting down: the lease expires by itself
            log.debug("could not release the self-audit lease", exc_info=True)


def acknowledge_alarms(session: Session, who: str) -> int:
    """Close every open alarm and restart the sweep from leaf 0 (after the operator restored
    the database): if anything is still wrong, the next sweep raises it again."""
    now = datetime.now(UTC)
    alarms = open_alarms(session, limit=1_000_000)
    for alarm in alarms:
        alarm.acknowledged_at = now
        alarm.acknowledged_by = who[:200]
    row = session.get(LogAuditProgress, _PROGRESS_ID)
    if row is not None:
        row.next_leaf, row.right_edge, row.catalogue_after = 0, b"", ""
        row.updated_at = now
    return len(alarms)
