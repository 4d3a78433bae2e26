"""A dataset is a stable identity; everything it ever said lives in immutable versions.

`datasets` holds only what is needed to find the current version quickly; a version row is
never updated after insert (the log commits to it).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, column_property, mapped_column

from anchoring.log_store import LogEntry
from registry.database import Base
from registry.timefmt import utc_now


class State(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"


class Visibility(StrEnum):
    PUBLIC = "public"
    GOVERNMENT = "government"


class Change(StrEnum):
    """What a version did; the three logged kinds are the log entry `type`s."""

    DRAFTED = "dataset.drafted"        # not logged: nobody outside the organisation sees drafts
    PUBLISHED = "dataset.published"
    UPDATED = "dataset.updated"
    WITHDRAWN = "dataset.withdrawn"


class Dataset(Base):
    __tablename__ = "datasets"
    __table_args__ = (
        UniqueConstraint("organization_id", "external_id", name="uq_datasets_org_external"),
        Index("ix_datasets_modified", "modified_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    organization_id: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(12))
    visibility: Mapped[str] = mapped_column(String(12))
    current_version: Mapped[int] = mapped_column()
    # The newest version the public side may see (published or withdrawn); drafts made on top
    # of a published dataset do not replace what citizens see until they are published.
    released_version: Mapped[int | None] = mapped_column()
    released_state: Mapped[str | None] = mapped_column(String(12))
    title: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    modified_at: Mapped[datetime] = mapped_column(default=utc_now)


class DatasetVersion(Base):
    __tablename__ = "dataset_versions"

    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="RESTRICT"),
                                            primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    change: Mapped[str] = mapped_column(String(24))
    state: Mapped[str] = mapped_column(String(12))
    visibility: Mapped[str] = mapped_column(String(12))
    slug: Mapped[str] = mapped_column(String(120))
    metadata_json: Mapped[str] = mapped_column(Text)
    metadata_sha256: Mapped[str] = mapped_column(String(64))
    # Hex 32-byte salt of a v2 (government-only) entry's metadata commitment; given only to
    # readers allowed to see the version.
    metadata_salt: Mapped[str | None] = mapped_column(String(64))
    leaf_index: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    receipt: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


# The entry's bytes live once, in log_entries: tiles, bundles and the API all read that copy,
# so they can never disagree (a second copy here was removed by migration 0008).
DatasetVersion.log_entry = column_property(
    select(LogEntry.entry).where(LogEntry.idx == DatasetVersion.leaf_index)
    .correlate_except(LogEntry).scalar_subquery())


class IdempotencyRecord(Base):
    """A POST's response, kept so a retried request with the same key gets the same answer."""

    __tablename__ = "idempotency_records"

    principal: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column()
    response_body: Mapped[str] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
