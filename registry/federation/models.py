"""Federation tables: the hub's trust configuration and what it witnessed; the member's
cosignatures. Migration 0010 creates them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Float, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from registry.database import Base
from registry.timefmt import utc_now


class MemberMode(StrEnum):
    PUSH = "push"   # the member submits add-checkpoint itself
    POLL = "poll"   # the hub fetches the member's checkpoint and proofs


class MemberStatus(StrEnum):
    ACTIVE = "active"
    REMOVED = "removed"  # no longer followed; its mirrored entries stay, marked


class FederationMember(Base):
    """One member registry the hub trusts, and the head it last cosigned for it.

    The witnessed head lives on this row so the row lock taken to check a submission is the
    same lock that guards updating it (tlog-witness requires check-and-store to be atomic).
    """

    __tablename__ = "federation_members"

    origin: Mapped[str] = mapped_column(String(255), primary_key=True)
    verifier_key: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(500))
    mode: Mapped[str] = mapped_column(String(8), default=MemberMode.PUSH)
    poll_interval: Mapped[float] = mapped_column(Float, default=30.0)
    status: Mapped[str] = mapped_column(String(12), default=MemberStatus.ACTIVE)
    witnessed_size: Mapped[int] = mapped_column(BigInteger, default=0)
    witnessed_root: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    witnessed_note: Mapped[str | None] = mapped_column(Text)
    witnessed_at: Mapped[datetime | None] = mapped_column()
    alarm: Mapped[str | None] = mapped_column(Text)  # set on a proven fork: no more cosigning
    last_error: Mapped[str | None] = mapped_column(Text)
    last_seen_at: Mapped[datetime | None] = mapped_column()
    added_at: Mapped[datetime] = mapped_column(default=utc_now)
    removed_at: Mapped[datetime | None] = mapped_column()
    # Mirroring: entries verified up to this size, and the compact range of [0, size) that
    # proves the next batch extends them (base64 hashes, JSON list).
    mirrored_size: Mapped[int] = mapped_column(BigInteger, default=0)
    mirrored_edge: Mapped[str] = mapped_column(Text, default="[]")
    organization_id: Mapped[str | None] = mapped_column(String(64))  # holds its datasets
    key_history: Mapped[str] = mapped_column(Text, default="[]")  # rotation statements, JSON


class WitnessedCheckpoint(Base):
    """Every member checkpoint the hub cosigned, and the hub log leaf that records it."""

    __tablename__ = "witnessed_checkpoints"

    origin: Mapped[str] = mapped_column(String(255), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)          # member-signed note + our cosignature
    cosignature: Mapped[str] = mapped_column(Text)   # our signature line alone
    timestamp: Mapped[int] = mapped_column(BigInteger)
    hub_leaf_index: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class WitnessEvidence(Base):
    """Proof that a member signed two histories (ndr-witness-evidence/v1 JSON)."""

    __tablename__ = "witness_evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    origin: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    evidence: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class MemberCosignature(Base):
    """On a member: a witness's cosignature line for one of our checkpoints."""

    __tablename__ = "member_cosignatures"

    witness: Mapped[str] = mapped_column(String(255), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    line: Mapped[str] = mapped_column(Text)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class FederatedEntry(Base):
    """Provenance of a mirrored dataset version: which member leaf it is, proven how."""

    __tablename__ = "federated_entries"

    dataset_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    origin: Mapped[str] = mapped_column(String(255), index=True)
    member_dataset_id: Mapped[str] = mapped_column(String(64))
    member_organization: Mapped[str | None] = mapped_column(String(64))
    leaf_index: Mapped[int] = mapped_column(BigInteger)
    entry: Mapped[str] = mapped_column(Text)
    checkpoint_size: Mapped[int] = mapped_column(BigInteger)  # the cosigned member size
    inclusion_path: Mapped[str] = mapped_column(Text)  # JSON list of base64 hashes
    mirrored_at: Mapped[datetime] = mapped_column(default=utc_now)


class MirrorRefusal(Base):
    """A member record the hub refused to mirror, and why (the mirror report)."""

    __tablename__ = "mirror_refusals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    origin: Mapped[str] = mapped_column(String(255), index=True)
    leaf_index: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class HarvestSource(Base):
    """A log-less source the hub harvests; its records are labelled as not verified."""

    __tablename__ = "harvest_sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(String(1000))
    organization_id: Mapped[str] = mapped_column(String(64))
    interval: Mapped[float] = mapped_column(Float, default=3600.0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    next_run_at: Mapped[datetime] = mapped_column(default=utc_now)
    last_run_at: Mapped[datetime | None] = mapped_column()
    last_report: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
