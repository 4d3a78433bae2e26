"""Search change feed: a cursor (and lease) per consumer of ``search_outbox``; the columnar
snapshot's ``search_changes`` log is retired (Tantivy replaced the snapshot).

Revision ID: 0007_search_feed
Revises: 0010_federation
"""

from __future__ import annotations

from alembic import op

from search.feed import create_feed_schema

revision = "0007_search_feed"
down_revision = "0010_federation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_feed_schema(op.get_bind())
    op.execute("DROP TABLE IF EXISTS search_changes")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS search_feed_consumer")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE TABLE IF NOT EXISTS search_changes ("
                   "seq INTEGER PRIMARY KEY AUTOINCREMENT, doc_id INTEGER NOT NULL)")
    else:
        op.execute("CREATE TABLE IF NOT EXISTS search_changes ("
                   "seq BIGSERIAL PRIMARY KEY, doc_id BIGINT NOT NULL)")
