"""One stored copy of each log entry; salts of v2 entries; the self-audit's progress and alarms.

* ``dataset_versions.log_entry`` duplicated ``log_entries.entry``, and nothing compared the two
  (bundles read one copy, tiles the other). Before it is dropped, every pair is compared: a
  difference is tampering or a bug, and the upgrade stops naming the leaf.
* ``dataset_versions.metadata_salt``: the salt a v2 (government-only) entry commits with.
* ``log_audit_progress`` / ``log_audit_alarms``: where the background self-audit resumes, and
  what it found (an unacknowledged alarm halts checkpoint signing and writes).

Revision ID: 0008_one_entry_copy
Revises: 0006_slugs_never_ids
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_one_entry_copy"
down_revision = "0006_slugs_never_ids"
branch_labels = None
depends_on = None


def _refuse_differing_copies() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT v.leaf_index, v.log_entry, e.entry FROM dataset_versions v "
        "LEFT JOIN log_entries e ON e.idx = v.leaf_index "
        "WHERE v.leaf_index IS NOT NULL")).all()
    for index, copy, entry in rows:
        if entry is None or copy is None or copy.encode("utf-8") != bytes(entry):
            raise RuntimeError(
                f"log entry {index}: dataset_versions.log_entry and log_entries.entry differ; "
                "restore the database from a backup before upgrading (see "
                "docs/transparency-log.md, 'When the self-audit raises an alarm')")


def upgrade() -> None:
    _refuse_differing_copies()
    with op.batch_alter_table("dataset_versions") as batch:
        batch.drop_column("log_entry")
        batch.add_column(sa.Column("metadata_salt", sa.String(64), nullable=True))
    op.create_table(
        "log_audit_progress",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("next_leaf", sa.BigInteger(), nullable=False),
        sa.Column("right_edge", sa.LargeBinary(), nullable=False),
        sa.Column("catalogue_after", sa.String(120), nullable=False),
        sa.Column("sweeps", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_log_audit_progress"),
    )
    op.create_table(
        "log_audit_alarms",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(60), nullable=False),
        sa.Column("leaf_index", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_log_audit_alarms"),
    )


def downgrade() -> None:
    op.drop_table("log_audit_alarms")
    op.drop_table("log_audit_progress")
    with op.batch_alter_table("dataset_versions") as batch:
        batch.drop_column("metadata_salt")
        batch.add_column(sa.Column("log_entry", sa.Text(), nullable=True))
    bind = op.get_bind()
    for index, entry in bind.execute(sa.text(
            "SELECT v.leaf_index, e.entry FROM dataset_versions v "
            "JOIN log_entries e ON e.idx = v.leaf_index")).all():
        bind.execute(sa.text("UPDATE dataset_versions SET log_entry = :e WHERE leaf_index = :i"),
                     {"e": bytes(entry).decode("utf-8"), "i": index})
