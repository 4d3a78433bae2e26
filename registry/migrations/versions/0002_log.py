"""The transparency log: entries, stored tree hashes, head, signed checkpoints.

Revision ID: 0002_log
Revises: 0001_catalogue
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_log"
down_revision = "0001_catalogue"
branch_labels = None
depends_on = None


def _index_type() -> sa.types.TypeEngine:
    # On SQLite only "INTEGER PRIMARY KEY" aliases the rowid (one B-tree instead of two).
    if op.get_bind().dialect.name == "sqlite":
        return sa.Integer()
    return sa.BigInteger()


def upgrade() -> None:
    op.create_table(
        "log_entries",
        sa.Column("idx", _index_type(), autoincrement=False, nullable=False),
        sa.Column("entry", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("idx", name="pk_log_entries"),
    )
    op.create_table(
        "log_hashes",
        sa.Column("idx", _index_type(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("idx", name="pk_log_hashes"),
    )
    op.create_table(
        "log_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_log_head"),
    )
    op.create_table(
        "log_checkpoints",
        sa.Column("size", _index_type(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size", name="pk_log_checkpoints"),
    )


def downgrade() -> None:
    op.drop_table("log_checkpoints")
    op.drop_table("log_head")
    op.drop_table("log_hashes")
    op.drop_table("log_entries")
