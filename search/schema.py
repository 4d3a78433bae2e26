"""DDL of the search tables, per dialect. Used by the Alembic migration ``0003_search`` and by
tests, so the two can never disagree.

Tables:
* ``search_document`` — one row per indexed dataset: visibility columns, sort keys, the original
  titles/descriptions (for highlighting) and, on PostgreSQL, the weighted ``tsv`` tsvector.
* ``search_facet`` — one row per (document, facet field, value). Filters and facet counts are
  index range scans on it; the primary key (field, value, doc_id) answers "which documents have
  theme X" and the second index (doc_id, field, value) answers "which values does this matching
  document have", so the planner can pick whichever side is smaller.
* ``search_fts`` (SQLite only) — FTS5 table of the analysed token streams, rowid = doc_id.
* ``search_outbox`` — the change feed, written in the catalogue transaction; read by the
  Tantivy indexer and the cluster feeder, each from its own position in
  ``search_feed_consumer`` (see search.feed).
"""

from __future__ import annotations

from sqlalchemy import Connection

SQLITE_DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS search_document (
        doc_id INTEGER PRIMARY KEY,
        dataset_id TEXT NOT NULL UNIQUE,
        slug TEXT NOT NULL,
        version INTEGER NOT NULL,
        state TEXT NOT NULL,
        visibility TEXT NOT NULL,
        organization_id TEXT NOT NULL,
        title_sort TEXT NOT NULL,
        modified_key TEXT NOT NULL,
        issued_key TEXT NOT NULL,
        title_zh TEXT, title_en TEXT, description_zh TEXT, description_en TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS ix_search_document_vis_modified"
    " ON search_document (visibility, state, modified_key)",
    "CREATE INDEX IF NOT EXISTS ix_search_document_title ON search_document (title_sort)",
    "CREATE INDEX IF NOT EXISTS ix_search_document_modified ON search_document (modified_key)",
    """CREATE TABLE IF NOT EXISTS search_facet (
        field TEXT NOT NULL,
        value TEXT NOT NULL,
        doc_id INTEGER NOT NULL,
        PRIMARY KEY (field, value, doc_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS ix_search_facet_doc ON search_facet (doc_id, field, value)",
    """CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(
        title, keywords, publisher, description, tokenize = 'ascii'
    )""",
    """CREATE TABLE IF NOT EXISTS search_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        dataset_id TEXT NOT NULL,
        op TEXT NOT NULL,
        version INTEGER NOT NULL,
        payload TEXT,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    )""",
)

POSTGRES_DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS search_document (
        doc_id BIGSERIAL PRIMARY KEY,
        dataset_id TEXT NOT NULL UNIQUE,
        slug TEXT NOT NULL,
        version INTEGER NOT NULL,
        state TEXT NOT NULL,
        visibility TEXT NOT NULL,
        organization_id TEXT NOT NULL,
        title_sort TEXT COLLATE "C" NOT NULL,
        modified_key TEXT COLLATE "C" NOT NULL,
        issued_key TEXT COLLATE "C" NOT NULL,
        title_zh TEXT, title_en TEXT, description_zh TEXT, description_en TEXT,
        tsv TSVECTOR NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS ix_search_document_tsv ON search_document USING GIN (tsv)",
    "CREATE INDEX IF NOT EXISTS ix_search_document_vis_modified"
    " ON search_document (visibility, state, modified_key)",
    "CREATE INDEX IF NOT EXISTS ix_search_document_title ON search_document (title_sort)",
    "CREATE INDEX IF NOT EXISTS ix_search_document_modified ON search_document (modified_key)",
    """CREATE TABLE IF NOT EXISTS search_facet (
        field TEXT COLLATE "C" NOT NULL,
        value TEXT COLLATE "C" NOT NULL,
        doc_id BIGINT NOT NULL,
        PRIMARY KEY (field, value, doc_id)
    )""",
    "CREATE INDEX IF NOT EXISTS ix_search_facet_doc ON search_facet (doc_id, field, value)",
    """CREATE TABLE IF NOT EXISTS search_outbox (
        id BIGSERIAL PRIMARY KEY,
        dataset_id TEXT NOT NULL,
        op TEXT NOT NULL,
        version INTEGER NOT NULL,
        payload TEXT,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )""",
)

TABLES: tuple[str, ...] = ("search_feed_consumer", "search_outbox", "search_fts", "search_facet",
                           "search_document")


def create_search_schema(connection: Connection) -> None:
    """Create every search table for the connection's dialect (idempotent): the in-database
    index, the outbox (the change feed) and its consumers' cursors."""
    from search.feed import create_feed_schema

    ddl = SQLITE_DDL if connection.dialect.name == "sqlite" else POSTGRES_DDL
    for statement in ddl:
        connection.exec_driver_sql(statement)
    create_feed_schema(connection)


def drop_search_schema(connection: Connection) -> None:
    for table in TABLES:
        if table == "search_fts" and connection.dialect.name != "sqlite":
            continue
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
