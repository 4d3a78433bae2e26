"""Federation rules: the log's own key rotations (`log_key_rotations`).

Each row is a rotation of the log's signing key: the `ndr.key-rotation/v1` statement signed by
the old key, the new key, and the leaf of the log that records the statement. Checkpoints and
receipts signed before a rotation stay checkable through this chain.

Revision ID: 0012_federation_rules
Revises: 0007_search_feed
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_federation_rules"
down_revision = "0007_search_feed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_key_rotations",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("old_key", sa.Text(), nullable=False),
        sa.Column("new_key", sa.Text(), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("leaf_index", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("log_key_rotations")
