"""Search tables: search_document, search_facet, the FTS5 table (SQLite) or the tsvector GIN
index (PostgreSQL), and the Elasticsearch outbox.

The DDL lives in ``search.schema`` so the tests create exactly what this migration creates.

Revision ID: 0003_search
Revises: 0002_log
"""

from __future__ import annotations

from alembic import op

from search.schema import create_search_schema, drop_search_schema

revision = "0003_search"
down_revision = "0002_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_search_schema(op.get_bind())


def downgrade() -> None:
    drop_search_schema(op.get_bind())
