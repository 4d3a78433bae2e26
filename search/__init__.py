"""One search interface over the engines: Tantivy (embedded, the default), an
OpenSearch/Elasticsearch cluster, and the legacy in-database SQLite FTS5 / PostgreSQL path.

The registry builds a flat ``SearchDocument`` per dataset and calls ``index`` / ``remove`` in
its own write transaction, and ``search`` in a read session. What matches and how it ranks is
decided in one place, `search.query_plan`; engines translate its plan. This package never
imports ``registry``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session

from search.documents import (
    FACET_FIELDS,
    Hit,
    InvalidCursor,
    SearchDocument,
    SearchQuery,
    SearchResults,
    Viewer,
)
from search.schema import create_search_schema, drop_search_schema


class SearchBackend(Protocol):
    name: str
    # True when index() and remove() only append change-feed rows and read nothing back: a
    # publish batch may then send them with its other statements in one round trip.
    updates_only_write: bool

    def index(self, session: Session, docs: Sequence[SearchDocument]) -> None: ...

    def remove(self, session: Session, dataset_ids: Sequence[str]) -> None: ...

    def search(self, session: Session, query: SearchQuery) -> SearchResults: ...

    def count(self, session: Session) -> int: ...


ENGINES: tuple[str, ...] = ("tantivy", "sqlite", "postgres", "opensearch", "elasticsearch")


def make_backend(
    name: str, *, elasticsearch_url: str | None = None, index_prefix: str = "ndr",
    index_path: str | Path | None = None, max_lag: float = 0.0,
) -> SearchBackend:
    """The backend called ``name``: "tantivy" (embedded, ``index_path`` is its directory under
    the registry's var/), "sqlite" or "postgres" (in the database), "opensearch" or
    "elasticsearch" (a search cluster at ``elasticsearch_url``, one or more node URLs
    comma-separated; the name picks the official client of that engine). ``max_lag``: how
    old a change may be before a Tantivy search in a worker that does not index waits for it."""
    if name == "tantivy":
        if index_path is None:
            raise ValueError("the tantivy backend needs index_path")
        from search.tantivy_engine import TantivyEngine

        return TantivyEngine(index_path, max_lag=max_lag)
    if name == "sqlite":
        from search.sqlite_fts import SqliteFtsBackend

        return SqliteFtsBackend()
    if name == "postgres":
        from search.postgres_fts import PostgresFtsBackend

        return PostgresFtsBackend()
    if name in ("opensearch", "elasticsearch"):
        if not elasticsearch_url:
            raise ValueError(f"the {name} backend needs a cluster URL (NDR_SEARCH_URL)")
        from search.elasticsearch_backend import ElasticsearchBackend

        return ElasticsearchBackend.connect(elasticsearch_url, flavour=name,
                                            index_prefix=index_prefix)
    raise ValueError(f"unknown search backend: {name!r}")


def backend_for_dialect(dialect_name: str) -> SearchBackend:
    """The in-database backend matching a SQLAlchemy dialect name."""
    return make_backend("sqlite" if dialect_name == "sqlite" else "postgres")


__all__ = [
    "FACET_FIELDS",
    "Hit",
    "InvalidCursor",
    "SearchBackend",
    "SearchDocument",
    "SearchQuery",
    "SearchResults",
    "Viewer",
    "backend_for_dialect",
    "create_search_schema",
    "drop_search_schema",
    "make_backend",
]
