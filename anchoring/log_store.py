"""The transparency log stored in SQL (SQLite or PostgreSQL), in the caller's transaction.

What is stored and why:

* ``log_entries`` - each entry's exact bytes and leaf hash, by index.
* ``log_hashes`` - every complete-subtree hash, keyed by its tlog stored-hash index, written
  once when the subtree completes. Roots and proofs read O(log n) rows in one query and never
  recompute a subtree; nothing is O(n) at start-up or per request.
* ``log_head`` - one row (size, root). Appenders lock it first, which is what makes indexes
  gap-free and unique across processes and hosts (``SELECT ... FOR UPDATE`` on PostgreSQL; on
  SQLite the caller's transaction already holds the write lock from ``BEGIN IMMEDIATE``).
* ``log_checkpoints`` - every checkpoint the log signed, so it can refuse to sign a later one
  that is not an extension of it.
* ``log_key_rotations`` - every rotation of the signing key: the statement signed by the old
  key naming the new one, and the leaf of this log that records it. Checkpoints, receipts and
  the self-audit accept any key of that chain; only the newest one signs.
* ``log_audit_progress`` / ``log_audit_alarms`` - where the background self-audit
  (``anchoring/self_audit.py``) resumes, and what it found. While an alarm is open (not
  acknowledged by an operator) the log appends nothing and signs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Executable,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from anchoring import tlog
from anchoring.auditor.key_rotation import (
    RotationError,
    rotation_entry,
    sign_rotation,
    verify_chain,
)
from anchoring.checkpoint import (
    Checkpoint,
    CheckpointError,
    Receipt,
    format_checkpoint,
    format_time,
    open_checkpoint,
    open_receipt,
)
from anchoring.checkpoint import sign_receipt as _sign_receipt
from anchoring.note import NoteError, NoteSigner, NoteVerifier

# Constraint names follow one convention across the catalogue, the log and the anchors, so
# Alembic migrations can name (and drop) constraints the same way on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# On SQLite only "INTEGER PRIMARY KEY" aliases the rowid (one B-tree instead of two).
_Index = BigInteger().with_variant(Integer(), "sqlite")
_HEAD_ID = 1
_INSERT_CHUNK = 10_000
# What an append reads first, in one statement: the head (id 1, _HEAD_ID: the one head row),
# whether an alarm is open, and the newest checkpoint's size and root.
_HEAD_FOR_APPEND = (
    "SELECT size, root, "
    "(SELECT id FROM log_audit_alarms WHERE acknowledged_at IS NULL LIMIT 1), "
    "(SELECT size FROM log_checkpoints ORDER BY size DESC LIMIT 1), "
    "(SELECT root FROM log_checkpoints ORDER BY size DESC LIMIT 1) "
    "FROM log_head WHERE id = 1")
MAX_ENTRY_SIZE = 0xFFFF
_HEAD_READ_AHEAD = "ndr.log_head_read_ahead"  # session.info: (transaction, head, hashes)


class LogBase(DeclarativeBase):
    """Declarative base of the log's tables, separate from the catalogue's."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class LogEntry(LogBase):
    __tablename__ = "log_entries"

    idx: Mapped[int] = mapped_column(_Index, primary_key=True, autoincrement=False)
    entry: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class LogHash(LogBase):
    __tablename__ = "log_hashes"

    idx: Mapped[int] = mapped_column(_Index, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)


class LogHead(LogBase):
    __tablename__ = "log_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)


class LogCheckpoint(LogBase):
    __tablename__ = "log_checkpoints"

    size: Mapped[int] = mapped_column(_Index, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class LogKeyRotation(LogBase):
    """A rotation of the log's signing key (see anchoring/auditor/key_rotation.py)."""

    __tablename__ = "log_key_rotations"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    old_key: Mapped[str] = mapped_column(Text, nullable=False)
    new_key: Mapped[str] = mapped_column(Text, nullable=False)
    statement: Mapped[str] = mapped_column(Text, nullable=False)
    leaf_index: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class LogAuditProgress(LogBase):
    """One row (id=1): the self-audit's sweep position and the right edge of [0, next_leaf)
    it derived from the entries alone, so a restart resumes instead of starting over."""

    __tablename__ = "log_audit_progress"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    next_leaf: Mapped[int] = mapped_column(BigInteger, nullable=False)
    right_edge: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    catalogue_after: Mapped[str] = mapped_column(String(120), nullable=False)
    sweeps: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class LogAuditAlarm(LogBase):
    """A mismatch the self-audit found; open until an operator acknowledges it."""

    __tablename__ = "log_audit_alarms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    detected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    kind: Mapped[str] = mapped_column(String(60), nullable=False)
    leaf_index: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    detail: Mapped[str] = mapped_column(Text, nullable=False)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                             nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class LogError(RuntimeError):
    """The stored log is inconsistent (tampering or a bug): refuse to go on."""


class LogHalted(LogError):
    """The self-audit found a mismatch: nothing is appended or signed until an operator acts."""

    def __init__(self, alarm: LogAuditAlarm) -> None:
        where = "" if alarm.leaf_index is None else f" at leaf {alarm.leaf_index}"
        super().__init__(f"the self-audit found {alarm.kind}{where}: {alarm.detail}; the log "
                         "is halted until an operator runs `ndr log audit --acknowledge`")
        self.alarm = alarm


def open_alarms(session: Session, limit: int = 100) -> list[LogAuditAlarm]:
    """Unacknowledged self-audit alarms, oldest first (shared by every process)."""
    return list(session.scalars(select(LogAuditAlarm).where(
        LogAuditAlarm.acknowledged_at.is_(None)).order_by(LogAuditAlarm.id).limit(limit)))


def require_not_halted(session: Session) -> None:
    """Raise LogHalted while an alarm is open. On every append, so the common case (no
    alarm) is one statement sent to the driver directly, without ORM compilation."""
    row = session.connection().exec_driver_sql(
        "SELECT id FROM log_audit_alarms WHERE acknowledged_at IS NULL LIMIT 1").first()
    if row is not None:
        alarms = open_alarms(session, limit=1)
        if alarms:
            raise LogHalted(alarms[0])


class LogRangeError(ValueError):
    """An index or size outside the log; `parameter` names the offending argument."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True)
class AppendedLeaf:
    index: int
    leaf_hash: bytes


@dataclass(frozen=True)
class PlannedAppend:
    """An append checked under the head lock, not yet stored (`TransparencyLog.plan_append`)."""

    leaves: list[AppendedLeaf]
    entry_rows: list[dict[str, Any]]
    hash_rows: list[dict[str, Any]]
    head: dict[str, Any] | None  # the head's new size and root (None: nothing to append)


@dataclass(frozen=True)
class SignedCheckpoint:
    origin: str
    size: int
    root: bytes
    note: str
    created_at: datetime


def _insert_ignoring_conflicts(session: Session, table: type[LogBase]):  # type: ignore[no-untyped-def]
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing()


def _as_utc(when: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything this module stores is UTC.
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _placeholders(session: Session, count: int) -> str:
    style = session.get_bind().dialect.paramstyle
    return ", ".join(["?" if style == "qmark" else "%s"] * count)


def hash_reader(session: Session):  # type: ignore[no-untyped-def]
    """A tlog.HashReader answering each batch with one SELECT on log_hashes.

    Proofs are the hot read path (a few dozen hashes each), so the statement goes to the
    driver directly: SQLAlchemy's per-call compile and result handling cost more than
    SQLite spends finding the rows (about 1 ms of a 2 ms proof at 10M leaves).
    """
    connection = session.connection()

    def read_hashes(indexes: list[int]) -> list[bytes]:
        if not indexes:
            return []
        rows = connection.exec_driver_sql(
            f"SELECT idx, hash FROM log_hashes WHERE idx IN "  # noqa: S608 - placeholders only
            f"({_placeholders(session, len(indexes))})", tuple(indexes)).all()
        found = {idx: h for idx, h in rows}
        try:
            return [bytes(found[i]) for i in indexes]
        except KeyError as missing:
            raise LogError(f"stored hash {missing} is missing") from None

    return read_hashes


def _append_reads(size: int, checkpoint_size: int) -> list[int]:
    """The stored hashes an append to a tree of `size` reads: its right edge, and the proof
    that the tree extends the newest checkpoint (of `checkpoint_size`)."""
    need = tlog.right_edge_indexes(size)
    if 0 < checkpoint_size < size:
        need += tlog.tree_proof_indexes(size, checkpoint_size)
    return need


def _prefetched(read: tlog.HashReader, indexes: list[int],
                read_ahead: dict[int, bytes] | None = None) -> tlog.HashReader:
    """A reader that answers from one batch read up front (falling back to `read`).
    `read_ahead`: hashes already read in this transaction; only the others are read."""
    cached = dict(read_ahead or {})
    missing = [i for i in dict.fromkeys(indexes) if i not in cached]
    cached.update(zip(missing, read(missing), strict=True))

    def read_hashes(wanted: list[int]) -> list[bytes]:
        if all(i in cached for i in wanted):
            return [cached[i] for i in wanted]
        return read(wanted)

    return read_hashes


class TransparencyLog:
    """The registry's log: append in the caller's transaction, sign checkpoints, serve proofs.

    Holds no per-request state, so one instance is shared by all threads of a process.
    """

    def __init__(self, origin: str, signer: NoteSigner,
                 key_loader: Callable[[], NoteSigner] | None = None) -> None:
        if not origin or "\n" in origin:
            raise ValueError("origin must be a non-empty single line")
        self.origin = origin
        self.signer = signer
        # Re-reads the key file: after `ndr log rotate-key` the checkpointer of a running
        # process picks the new key up by itself (see `current_signer`).
        self._key_loader = key_loader
        # Where this process's last append left the log: (size, newest checkpoint's size).
        # Only a guess of which hashes the next append reads, so that they can be read with
        # the head; whatever is read is still checked against the head read under the lock.
        self._head_hint: tuple[int, int] | None = None

    # -- keys ------------------------------------------------------------------------------

    def key_chain(self, session: Session) -> list[NoteVerifier]:
        """Every key this log has signed with, oldest first, each rotation checked against
        the key before it (LogError if the record is broken). Without rotations: our key."""
        rows = session.scalars(select(LogKeyRotation).order_by(LogKeyRotation.seq)).all()
        if not rows:
            return [self.signer.verifier]
        try:
            chain = verify_chain(rows[0].old_key, [(r.statement, r.new_key) for r in rows])
        except (RotationError, NoteError) as exc:
            raise LogError(f"the record of key rotations does not verify: {exc}") from exc
        for previous, row in zip(chain, rows, strict=False):
            if previous.vkey != row.old_key:
                raise LogError(f"rotation {row.seq} starts from another key than the one "
                               "before it")
        return chain

    def current_signer(self, session: Session) -> NoteSigner:
        """The signer of the newest key in the chain; re-reads the key file once if this
        process still holds a retired key, and refuses (LogError) to sign with a retired key.
        """
        newest = self.key_chain(session)[-1]
        if newest.vkey != self.signer.verifier_key and self._key_loader is not None:
            try:
                self.signer = self._key_loader()
            except (OSError, ValueError) as exc:
                raise LogError(f"the log key was rotated; cannot read the new key: {exc}"
                               ) from exc
        if newest.vkey != self.signer.verifier_key:
            raise LogError(f"the log key was rotated to {newest.vkey}; this process holds "
                           f"{self.signer.verifier_key}: give it the new key file (a "
                           "retired key never signs again)")
        return self.signer

    def rotate_key(self, session: Session, new: NoteSigner) -> tuple[str, int]:
        """Record a rotation to `new` in the caller's transaction: the statement signed by
        the current key becomes a leaf of this log and a row of the chain. Returns (statement,
        leaf index). The caller swaps the key file only after the transaction commits."""
        current = self.current_signer(session)
        try:
            statement = sign_rotation(current, new.verifier_key)
            entry = rotation_entry(statement, format_time(datetime.now(UTC)))
        except RotationError as exc:
            raise LogError(str(exc)) from exc
        (leaf,) = self.append(session, [entry])
        session.add(LogKeyRotation(old_key=current.verifier_key, new_key=new.verifier_key,
                                   statement=statement, leaf_index=leaf.index,
                                   created_at=datetime.now(UTC)))
        session.flush()
        return statement, leaf.index

    def rotations(self, session: Session) -> list[LogKeyRotation]:
        return list(session.scalars(select(LogKeyRotation).order_by(LogKeyRotation.seq)))

    def open_receipt_any(self, note: str, verifiers: Sequence[NoteVerifier]) -> Receipt:
        """A receipt signed by any key of the chain (one signed before a rotation stays
        valid)."""
        error: Exception = CheckpointError("no key")
        for verifier in reversed(verifiers):
            try:
                return open_receipt(note, verifier)
            except (CheckpointError, ValueError) as exc:
                error = exc
        raise error

    @property
    def verifier_key(self) -> str:
        return self.signer.verifier_key

    # -- head ------------------------------------------------------------------------------

    def _head(self, session: Session, *, lock: bool) -> tuple[int, bytes]:
        query = select(LogHead.size, LogHead.root).where(LogHead.id == _HEAD_ID)
        if lock:
            query = query.with_for_update()
        row = session.execute(query).first()
        if row is None:
            if not lock:
                return 0, tlog.empty_tree_hash()
            session.execute(_insert_ignoring_conflicts(session, LogHead).values(
                id=_HEAD_ID, size=0, root=tlog.empty_tree_hash()))
            row = session.execute(query).one()
        return int(row.size), bytes(row.root)

    def size(self, session: Session) -> int:
        row = session.connection().exec_driver_sql(
            "SELECT size FROM log_head WHERE id = 1").first()  # _HEAD_ID: the one head row
        return 0 if row is None else int(row[0])

    # -- append ----------------------------------------------------------------------------

    def append(self, session: Session, entries: Sequence[bytes]) -> list[AppendedLeaf]:
        """Append entries in the caller's transaction; indexes are known before commit."""
        planned = self.plan_append(session, entries)
        self.write_append(session, planned)
        return planned.leaves

    def plan_append(self, session: Session, entries: Sequence[bytes]) -> PlannedAppend:
        """Everything an append reads and checks, under the head row's lock; nothing written.

        All new stored hashes are computed in memory from the tree's right edge (log2 n rows
        read), so a bulk import costs O(k) writes for k entries. `write_append` stores them:
        its statements read nothing back, so a caller may send them in one round trip
        together with its own (`registry.database.pipelined`).
        """
        for entry in entries:
            if not isinstance(entry, bytes | bytearray) or len(entry) > MAX_ENTRY_SIZE:
                raise ValueError("log entries must be bytes of at most 65535")
        if not entries:
            return PlannedAppend([], [], [], None)
        read_ahead = self._take_read_ahead(session)  # once: a second append reads afresh
        size, head_root, latest = self._head_for_append(
            session, read_ahead[0] if read_ahead is not None else None)
        # Never a receipt without a checkpoint behind it: if the stored tree could not be
        # signed (its right edge does not give the head root, or it does not extend the last
        # signed checkpoint), refuse the write now instead of acknowledging it. The right
        # edge and the consistency proof's hashes come in one read.
        edge_indexes = tlog.right_edge_indexes(size)
        checkpoint_size = latest.size if latest is not None else 0
        reader = _prefetched(hash_reader(session), _append_reads(size, checkpoint_size),
                             read_ahead[1] if read_ahead is not None else None)
        right_edge = reader(edge_indexes)
        if tlog.root_from_right_edge(right_edge) != head_root:
            raise LogError(f"stored hashes do not recompute the head root at size {size}")
        self.require_extends(session, size, head_root, reader, latest)
        leaves = [tlog.hash_leaf(bytes(e)) for e in entries]
        result = tlog.append_leaves(size, right_edge, leaves)
        self._head_hint = (size + len(entries), checkpoint_size)
        now = datetime.now(UTC)
        return PlannedAppend(
            leaves=[AppendedLeaf(index=size + i, leaf_hash=leaf) for i, leaf in enumerate(leaves)],
            entry_rows=[{"idx": size + i, "entry": bytes(e), "leaf_hash": leaves[i],
                         "created_at": now} for i, e in enumerate(entries)],
            hash_rows=[{"idx": idx, "hash": h} for idx, h in result.stored],
            head={"size": size + len(entries), "root": result.root})

    def write_append(self, session: Session, planned: PlannedAppend) -> None:
        """Store a planned append: its entries, new hashes and head (statements only, on the
        tables themselves: the ORM's bulk machinery cost more than the statements)."""
        if planned.head is None:
            return
        for rows, table in ((planned.entry_rows, LogEntry), (planned.hash_rows, LogHash)):
            for start in range(0, len(rows), _INSERT_CHUNK):
                session.execute(insert(table.__table__), rows[start:start + _INSERT_CHUNK])
        head = LogHead.__table__
        session.execute(update(head).where(head.c.id == _HEAD_ID).values(**planned.head))

    @staticmethod
    def _head_for_append_sql(session: Session) -> str:
        postgres = session.get_bind().dialect.name == "postgresql"
        return _HEAD_FOR_APPEND + (" FOR UPDATE" if postgres else "")

    def head_for_append_statements(self, session: Session) -> list[Executable]:
        """The reads of this transaction's next append, for a caller that sends them together
        with its own (`registry.database.read_together`) and hands their rows back through
        `use_head_for_append`. Only once the caller holds the catalogue write lock: the head
        read locks the head row and must see the previous append. The hashes are those the
        append will need if the log is where this process's last append left it; the append
        reads any others itself, and checks all against the head as always."""
        statements: list[Executable] = [text(self._head_for_append_sql(session))]
        if self._head_hint is not None:
            statements.append(select(LogHash.idx, LogHash.hash).where(
                LogHash.idx.in_(_append_reads(*self._head_hint))))
        return statements

    def use_head_for_append(self, session: Session, rows: Sequence[Sequence[Any]]) -> None:
        """The next append in this transaction starts from these rows instead of reading."""
        head = rows[0][0] if rows and rows[0] else None
        hashes = {int(idx): bytes(h) for idx, h in rows[1]} if len(rows) > 1 else {}
        session.info[_HEAD_READ_AHEAD] = (session.get_transaction(), head, hashes)

    @staticmethod
    def _take_read_ahead(session: Session) -> tuple[Any, dict[int, bytes]] | None:
        """The head row and hashes given by `use_head_for_append` in this transaction, if
        any; taken, so that the next append reads for itself."""
        given = session.info.pop(_HEAD_READ_AHEAD, None)
        if given is None or given[0] is not session.get_transaction() or given[1] is None:
            return None
        return given[1], given[2]

    def _head_for_append(self, session: Session, read_ahead: Any = None
                         ) -> tuple[int, bytes, SignedCheckpoint | None]:
        """The head (locked until commit), refused while an alarm is open, and the newest
        checkpoint's (size, root): one statement, one round trip on PostgreSQL.

        The scalar subqueries read the statement's snapshot. Should the head lock have to
        wait for another appender, that snapshot predates its commit: the checkpoint read may
        then be an older one (which the newer one extends, so the check still holds) and an
        alarm raised meanwhile is seen by the next append, as one raised just after this
        statement would be. Catalogue writes take the catalogue write lock first, so their
        head lock never waits on one another. `read_ahead`: that statement's row, read already
        together with the caller's reads (`use_head_for_append`)."""
        statement = self._head_for_append_sql(session)
        row = (read_ahead if read_ahead is not None
               else session.connection().exec_driver_sql(statement).first())
        if row is None:  # a new log: create its head row, then read the same way
            session.execute(_insert_ignoring_conflicts(session, LogHead).values(
                id=_HEAD_ID, size=0, root=tlog.empty_tree_hash()))
            row = session.connection().exec_driver_sql(statement).one()
        if row[2] is not None:
            require_not_halted(session)  # raises with the alarm's details
        latest = None if row[3] is None else SignedCheckpoint(
            origin=self.origin, size=int(row[3]), root=bytes(row[4]), note="",
            created_at=datetime.now(UTC))
        return int(row[0]), bytes(row[1]), latest

    # -- reads -----------------------------------------------------------------------------

    def _check_size(self, session: Session, size: int, parameter: str) -> int:
        current = self.size(session)
        if not 0 <= size <= current:
            raise LogRangeError(parameter, f"{parameter} {size} is outside the log (size "
                                           f"{current})")
        return current

    def root_at(self, session: Session, size: int) -> bytes:
        self._check_size(session, size, "size")
        return tlog.tree_hash(size, hash_reader(session))

    def inclusion_proof(self, session: Session, index: int, size: int) -> list[bytes]:
        self._check_size(session, size, "size")
        if not 0 <= index < size:
            raise LogRangeError("index", f"index {index} is not below size {size}")
        return tlog.prove_record(size, index, hash_reader(session))

    def consistency_proof(self, session: Session, old: int, new: int) -> list[bytes]:
        self._check_size(session, new, "new")
        if not 0 < old <= new:
            raise LogRangeError("old", f"old must be between 1 and new ({new})")
        return tlog.prove_tree(new, old, hash_reader(session))

    def entry(self, session: Session, index: int) -> bytes:
        value = session.execute(select(LogEntry.entry).where(LogEntry.idx == index)).scalar()
        if value is None:
            raise LogRangeError("index", f"no entry at index {index}")
        return bytes(value)

    def _check_tile(self, session: Session, tile: tlog.Tile) -> None:
        if tile.records_needed() > self.size(session):
            raise LogRangeError("tile", f"{tile.path()} is beyond the log")

    def hash_tile(self, session: Session, level: int, n: int, width: int) -> bytes:
        """Tile bytes: `width` hashes at tree level 8*level, all of complete subtrees."""
        tile = tlog.Tile(level=level, n=n, width=width)
        self._check_tile(session, tile)
        indexes = [tlog.stored_hash_index(lv, k) for lv, k in tlog.tile_hash_coordinates(tile)]
        return b"".join(hash_reader(session)(indexes))

    def entries_tile(self, session: Session, n: int, width: int) -> bytes:
        tile = tlog.Tile(level=tlog.ENTRIES_LEVEL, n=n, width=width)
        self._check_tile(session, tile)
        start = n * tlog.TILE_WIDTH
        rows = session.execute(
            select(LogEntry.entry).where(LogEntry.idx >= start, LogEntry.idx < start + width)
            .order_by(LogEntry.idx)).scalars().all()
        if len(rows) != width:
            raise LogError(f"entries {start}..{start + width - 1} are missing")
        return tlog.encode_entry_bundle([bytes(r) for r in rows])

    # -- checkpoints -----------------------------------------------------------------------

    @staticmethod
    def signed_row(row: LogCheckpoint, origin: str) -> SignedCheckpoint:
        return SignedCheckpoint(origin=origin, size=int(row.size), root=bytes(row.root),
                                note=row.note, created_at=_as_utc(row.created_at))

    def latest_checkpoint(self, session: Session) -> SignedCheckpoint | None:
        row = session.execute(
            select(LogCheckpoint).order_by(LogCheckpoint.size.desc()).limit(1)).scalar()
        return None if row is None else self.signed_row(row, self.origin)

    def checkpoint_at_least(self, session: Session, size: int) -> SignedCheckpoint | None:
        """The smallest signed checkpoint covering `size` records.

        The smallest, not the latest, so a proof bundle for an old entry stays the same
        (and cacheable) while the log keeps growing.
        """
        row = session.execute(
            select(LogCheckpoint).where(LogCheckpoint.size >= size)
            .order_by(LogCheckpoint.size).limit(1)).scalar()
        return None if row is None else self.signed_row(row, self.origin)

    def checkpoint_at(self, session: Session, size: int) -> SignedCheckpoint | None:
        row = session.get(LogCheckpoint, size)
        return None if row is None else self.signed_row(row, self.origin)

    def sign_checkpoint_if_grown(self, session: Session) -> SignedCheckpoint | None:
        """Sign a checkpoint for the current size if none exists for it yet.

        Before signing, the root is recomputed from stored hashes and compared with the head,
        and the new tree is proven (from stored hashes) to extend the last signed checkpoint.
        A log key must never sign two views of history, whatever the database says.
        """
        size, root = self._head(session, lock=True)
        require_not_halted(session)
        chain = self.key_chain(session)
        signer = self.current_signer(session)
        latest = self.latest_checkpoint(session)
        if latest is not None:
            self.check_checkpoint_row(latest, chain)
            if size == latest.size:
                if root != latest.root:
                    raise LogError(f"root at size {size} differs from the signed checkpoint")
                return None
        reader = hash_reader(session)
        if tlog.tree_hash(size, reader) != root:
            raise LogError(f"stored hashes do not recompute the head root at size {size}")
        self.require_extends(session, size, root, reader, latest)
        note = signer.sign(format_checkpoint(Checkpoint(self.origin, size, root)))
        session.execute(_insert_ignoring_conflicts(session, LogCheckpoint).values(
            size=size, root=root, note=note, created_at=datetime.now(UTC)))
        stored = self.checkpoint_at(session, size)
        if stored is None or stored.root != root:
            raise LogError(f"another signer stored a different checkpoint at size {size}")
        return stored

    def check_checkpoint_row(self, checkpoint: SignedCheckpoint,
                             verifiers: Sequence[NoteVerifier] | None = None) -> None:
        """Raise LogError unless the stored row is what its signed note says, signed by one
        of `verifiers` (the key chain; default: this process's key)."""
        signed = None
        error: Exception | None = None
        for verifier in reversed(verifiers or [self.signer.verifier]):
            try:
                signed = open_checkpoint(checkpoint.note, verifier, self.origin)
                break
            except ValueError as exc:
                error = exc
        if signed is None:
            raise LogError(f"checkpoint at size {checkpoint.size} does not verify: {error}"
                           ) from error
        if (signed.size, signed.root) != (checkpoint.size, checkpoint.root):
            raise LogError(f"stored checkpoint row at size {checkpoint.size} does not match "
                           "its signed note")

    def require_extends(self, session: Session, size: int, root: bytes,
                                reader: tlog.HashReader, latest: SignedCheckpoint | None
                                ) -> None:
        """Raise LogError unless the tree (size, root) extends the last signed checkpoint."""
        if latest is None or latest.size == 0:
            return
        if size < latest.size:
            raise LogError(f"log shrank from {latest.size} to {size}")
        if size == latest.size:
            if root != latest.root:
                raise LogError(f"root at size {size} differs from the signed checkpoint")
            return
        try:
            proof = tlog.prove_tree(size, latest.size, reader)
            tlog.check_tree(proof, size, root, latest.size, latest.root)
        except tlog.ProofError as exc:
            raise LogError(f"size {size} is not consistent with the checkpoint at "
                           f"{latest.size}: {exc}") from exc

    # -- receipts --------------------------------------------------------------------------

    def sign_receipt(self, index: int, leaf_hash: bytes, when: datetime) -> str:
        """A signed note promising `leaf_hash` is at `index`, until a checkpoint covers it."""
        return _sign_receipt(self.signer, Receipt(origin=self.origin, index=index,
                                                  leaf_hash=leaf_hash, time=when))
