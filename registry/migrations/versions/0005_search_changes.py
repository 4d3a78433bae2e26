"""search_changes: the log of touched search documents that keeps columnar snapshots current.

Revision ID: 0005_search_changes
Revises: 0004_anchors
"""

from __future__ import annotations

from alembic import op

revision = "0005_search_changes"
down_revision = "0004_anchors"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE TABLE IF NOT EXISTS search_changes ("
                   "seq INTEGER PRIMARY KEY AUTOINCREMENT, doc_id INTEGER NOT NULL)")
    else:
        op.execute("CREATE TABLE IF NOT EXISTS search_changes ("
                   "seq BIGSERIAL PRIMARY KEY, doc_id BIGINT NOT NULL)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS search_changes")
