"""Anchoring tables: anchors, the anchor worker lease, the local anchor journal.

Revision ID: 0004_anchors
Revises: 0003_search
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_anchors"
down_revision = "0003_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "anchors",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("checkpoint_sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("checkpoint_note", sa.Text(), nullable=False),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("chain_id", sa.String(128), nullable=False),
        sa.Column("contract", sa.String(128), nullable=False),
        sa.Column("tx_id", sa.String(130), nullable=False),
        sa.Column("block_height", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(130), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("confirmations", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'final', 'failed')", name="ck_anchors_status"),
        sa.CheckConstraint("size > 0", name="ck_anchors_size_positive"),
        sa.PrimaryKeyConstraint("id", name="pk_anchors"),
    )
    op.create_index("uq_anchors_live_size", "anchors",
                    ["backend", "chain_id", "contract", "origin", "size"], unique=True,
                    sqlite_where=sa.text("status != 'failed'"),
                    postgresql_where=sa.text("status != 'failed'"))
    op.create_index("ix_anchors_status", "anchors", ["status"])
    op.create_table(
        "anchor_lease",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("renewed_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_anchor_lease"),
    )
    op.create_table(
        "anchor_journal",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("checkpoint_sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("recorded_at", sa.String(40), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("record_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("signature", sa.LargeBinary(64), nullable=False),
        sa.CheckConstraint("seq > 0", name="ck_anchor_journal_seq_positive"),
        sa.PrimaryKeyConstraint("seq", name="pk_anchor_journal"),
        sa.UniqueConstraint("record_hash", name="uq_anchor_journal_record_hash"),
    )
    op.create_index("ix_anchor_journal_origin", "anchor_journal", ["origin"])


def downgrade() -> None:
    op.drop_index("ix_anchor_journal_origin", table_name="anchor_journal")
    op.drop_table("anchor_journal")
    op.drop_table("anchor_lease")
    op.drop_index("ix_anchors_status", table_name="anchors")
    op.drop_index("uq_anchors_live_size", table_name="anchors")
    op.drop_table("anchors")
