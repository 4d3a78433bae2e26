"""Anchor bookkeeping in the registry database: anchors, the worker lease, the local journal.

The tables sit on their own declarative base so the anchoring side can be created, migrated and
tested without the catalogue. Three rules are enforced by the schema itself rather than trusted
to the worker:

* at most one live (pending or final) anchor per (backend, chain, contract, origin, size) — a
  partial unique index, so two workers racing cannot record the same size twice;
* the journal is a chain of records keyed by a dense sequence number, so an append that raced
  another append fails on the primary key instead of forking the journal;
* the lease row names one holder with an expiry; it changes hands only through a conditional
  UPDATE, which every database serialises.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Index,
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
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from anchoring.log_store import NAMING_CONVENTION

PENDING = "pending"
FINAL = "final"
FAILED = "failed"
STATUSES = (PENDING, FINAL, FAILED)


class AnchorBase(DeclarativeBase):
    """Declarative base of the anchoring tables (kept apart from the catalogue's)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Anchor(AnchorBase):
    __tablename__ = "anchors"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'final', 'failed')", name="status"),
        CheckConstraint("size > 0", name="size_positive"),
        Index("uq_anchors_live_size", "backend", "chain_id", "contract", "origin", "size",
              unique=True, sqlite_where=text("status != 'failed'"),
              postgresql_where=text("status != 'failed'")),
        Index("ix_anchors_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    origin: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    checkpoint_sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    checkpoint_note: Mapped[str] = mapped_column(Text)
    backend: Mapped[str] = mapped_column(String(32))
    chain_id: Mapped[str] = mapped_column(String(128))
    contract: Mapped[str] = mapped_column(String(128))
    tx_id: Mapped[str] = mapped_column(String(130))
    block_height: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    block_hash: Mapped[str | None] = mapped_column(String(130), nullable=True)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    confirmations: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class AnchorLease(AnchorBase):
    __tablename__ = "anchor_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    expires_at_ms: Mapped[int] = mapped_column(BigInteger)
    renewed_at_ms: Mapped[int] = mapped_column(BigInteger)


class JournalRecord(AnchorBase):
    """One record of the local anchor journal (see anchor_backends/local_journal.py)."""

    __tablename__ = "anchor_journal"
    __table_args__ = (CheckConstraint("seq > 0", name="seq_positive"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    origin: Mapped[str] = mapped_column(String(255), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    checkpoint_sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    recorded_at: Mapped[str] = mapped_column(String(40))
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    record_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))


# --- lease ---------------------------------------------------------------------------------------

def try_acquire_lease(session: Session, name: str, holder: str, now_ms: int, ttl_ms: int) -> bool:
    """Take or renew the lease ``name`` for ``holder``; False when someone else holds it.

    The UPDATE succeeds only for the current holder or once the previous holder's lease has
    expired, so exactly one worker at a time sees True. Hosts' clocks must agree to well within
    the TTL (NTP), because expiry is judged by the caller's clock.
    """
    claimed = session.execute(
        update(AnchorLease)
        .where(AnchorLease.name == name)
        .where((AnchorLease.holder == holder) | (AnchorLease.expires_at_ms < now_ms))
        .values(holder=holder, expires_at_ms=now_ms + ttl_ms, renewed_at_ms=now_ms)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount == 1:
        return True
    if session.get(AnchorLease, name) is not None:
        return False
    try:
        with session.begin_nested():
            session.execute(insert(AnchorLease).values(
                name=name, holder=holder, expires_at_ms=now_ms + ttl_ms, renewed_at_ms=now_ms))
    except IntegrityError:
        return False
    return True


def release_lease(session: Session, name: str, holder: str) -> None:
    """Give the lease up early (clean shutdown) so another worker need not wait for expiry."""
    session.execute(
        update(AnchorLease)
        .where(AnchorLease.name == name, AnchorLease.holder == holder)
        .values(expires_at_ms=0)
        .execution_options(synchronize_session=False)
    )


def lease_holder(session: Session, name: str, now_ms: int) -> str | None:
    lease = session.get(AnchorLease, name)
    if lease is None or lease.expires_at_ms < now_ms:
        return None
    return lease.holder


# --- anchors -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BackendIdentity:
    """Which chain and contract an anchor row belongs to (a worker sees only its own rows)."""

    backend: str
    chain_id: str
    contract: str


def _rows_of(identity: BackendIdentity) -> Any:
    return (
        (Anchor.backend == identity.backend)
        & (Anchor.chain_id == identity.chain_id)
        & (Anchor.contract == identity.contract)
    )


def pending_anchors(session: Session, identity: BackendIdentity) -> list[Anchor]:
    return list(session.scalars(
        select(Anchor).where(_rows_of(identity), Anchor.status == PENDING).order_by(Anchor.id)))


def latest_final_anchor(session: Session, identity: BackendIdentity,
                        origin: str) -> Anchor | None:
    return session.scalars(
        select(Anchor)
        .where(_rows_of(identity), Anchor.origin == origin, Anchor.status == FINAL)
        .order_by(Anchor.size.desc()).limit(1)
    ).first()


def largest_live_size(session: Session, identity: BackendIdentity, origin: str) -> int:
    """The largest size recorded as pending or final; 0 when none."""
    size = session.scalar(
        select(Anchor.size)
        .where(_rows_of(identity), Anchor.origin == origin, Anchor.status != FAILED)
        .order_by(Anchor.size.desc()).limit(1)
    )
    return int(size or 0)


def last_submitted_at(session: Session, identity: BackendIdentity) -> datetime | None:
    """When this backend last got a transaction from us, failed ones included (epoch pacing)."""
    when = session.scalar(
        select(Anchor.submitted_at).where(_rows_of(identity))
        .order_by(Anchor.submitted_at.desc()).limit(1))
    return as_utc(when) if when is not None else None


def as_utc(when: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def anchor_receipt(anchor: Anchor) -> dict[str, Any]:
    """The JSON-ready receipt of one anchor, as served by /api/v1/anchors and put in bundles.

    ``origin_id`` (keccak256 of the origin) is included for EVM anchors so that an auditor with
    only the standard library can make the contract call without computing keccak itself.
    """
    receipt: dict[str, Any] = {
        "id": anchor.id,
        "backend": anchor.backend,
        "chain_id": anchor.chain_id,
        "contract": anchor.contract,
        "tx_id": anchor.tx_id,
        "block_number": anchor.block_height,
        "block_hash": anchor.block_hash,
        "origin": anchor.origin,
        "size": anchor.size,
        "root": base64.b64encode(anchor.root).decode("ascii"),
        "checkpoint_sha256": anchor.checkpoint_sha256.hex(),
        "status": anchor.status,
        "confirmations": anchor.confirmations,
        "submitted_at": as_utc(anchor.submitted_at).isoformat(),
        "confirmed_at": as_utc(anchor.confirmed_at).isoformat() if anchor.confirmed_at else None,
    }
    if anchor.backend in ("evm", "chainmaker"):
        from anchoring.auditor.onchain import origin_id

        receipt["origin_id"] = "0x" + origin_id(anchor.origin).hex()
    if anchor.backend == "evm":
        receipt["tx_hash"] = anchor.tx_id
        if anchor.chain_id.isdigit():
            receipt["chain_id"] = int(anchor.chain_id)
    if anchor.error:
        receipt["error"] = anchor.error
    return receipt


def list_anchors(session: Session, *, limit: int = 100, before_id: int | None = None,
                 status: str | None = None) -> list[dict[str, Any]]:
    """Anchors newest first as JSON-ready dicts (for ``GET /api/v1/anchors``), keyset-paged."""
    query = select(Anchor).order_by(Anchor.id.desc()).limit(max(1, min(limit, 1000)))
    if before_id is not None:
        query = query.where(Anchor.id < before_id)
    if status is not None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        query = query.where(Anchor.status == status)
    return [anchor_receipt(a) for a in session.scalars(query)]


def final_anchor_covering(session: Session, origin: str, size: int) -> dict[str, Any] | None:
    """The earliest final anchor of ``origin`` whose tree includes the first ``size`` leaves.

    This is the receipt a proof bundle for leaf ``size - 1`` should carry: the auditor checks the
    anchored root against a consistency proof from the bundle's checkpoint.
    """
    anchor = session.scalars(
        select(Anchor)
        .where(Anchor.origin == origin, Anchor.status == FINAL, Anchor.size >= size)
        .order_by(Anchor.size, Anchor.id).limit(1)
    ).first()
    return anchor_receipt(anchor) if anchor is not None else None
