"""What the SQLite FTS5 and PostgreSQL backends share: the write path into ``search_document`` /
``search_facet``, and the filter, visibility, facet, sort and cursor SQL.

Only two things differ per engine and are left to subclasses: how analysed text is stored
(an FTS5 row, or a weighted tsvector column) and how a query's terms become a match condition
and a score. Every value reaches the database as a bound parameter; the SQL text is assembled
only from constants and generated parameter names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from search.analysis import QueryTerm, index_text, query_terms, text_tokens_of
from search.documents import (
    Hit,
    SearchDocument,
    SearchQuery,
    SearchResults,
    decode_cursor,
    encode_cursor,
    facet_values,
    issued_key,
    modified_key,
    title_key,
)
from search.highlight import highlights_for

_CHUNK = 500  # keeps IN-lists well under SQLite's bound-parameter limit


@dataclass(frozen=True)
class AnalysedText:
    """The four weighted token streams of a document: title > keywords > publisher > description."""

    title: str
    keywords: str
    publisher: str
    description: str


def analyse_document(doc: SearchDocument) -> AnalysedText:
    own = doc.get("analysed") or text_tokens_of(
        doc.get("title_zh"), doc.get("title_en"), doc.get("keywords", []),
        doc.get("themes", []), doc.get("description_zh"), doc.get("description_en"))
    return AnalysedText(title=own["title"], keywords=own["keywords"],
                        publisher=_publisher_text(tuple(doc.get("publisher_names", []))),
                        description=own["description"])


@lru_cache(maxsize=4096)
def _publisher_text(names: tuple[str, ...]) -> str:
    """Publisher names repeat for every dataset of an organisation: analyse them once."""
    return index_text(*names)


def document_row(doc_id: int, doc: SearchDocument) -> dict[str, Any]:
    return {
        "doc_id": doc_id,
        "dataset_id": doc["dataset_id"],
        "slug": doc["slug"],
        "version": doc["version"],
        "state": doc["state"],
        "visibility": doc["visibility"],
        "organization_id": doc["organization_id"],
        "title_sort": title_key(doc),
        "modified_key": modified_key(doc.get("modified")) or "",
        "issued_key": issued_key(doc.get("issued")) or "",
        "title_zh": doc.get("title_zh"),
        "title_en": doc.get("title_en"),
        "description_zh": doc.get("description_zh"),
        "description_en": doc.get("description_en"),
    }


@dataclass
class Params:
    """Collects bound parameters under generated names."""

    values: dict[str, Any] = field(default_factory=dict)

    def bind(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return ":" + name

    def bind_list(self, values: Sequence[Any]) -> str:
        return "(" + ", ".join(self.bind(v) for v in values) + ")"


@dataclass(frozen=True)
class MatchSql:
    """How a backend expresses full-text matching inside the shared queries.

    ``condition`` restricts ``d`` (search_document) to matching documents; the relevance query
    instead reads ``from_clause`` (which must expose ``d``) restricted by ``ranked_condition``,
    where ``score`` (larger is better) can be computed.
    """

    condition: str
    from_clause: str
    ranked_condition: str
    score: str


_DOC_COLUMNS = (
    "d.doc_id, d.dataset_id, d.slug, d.title_zh, d.title_en, d.description_zh, "
    "d.description_en, d.modified_key, d.title_sort"
)


class SqlSearchBackend:
    """Base class; see SqliteFtsBackend and PostgresFtsBackend."""

    name = "sql"
    updates_only_write = False  # an update reads the documents' ids first

    # ---- engine-specific hooks -----------------------------------------------------------
    def _allocate_doc_ids(self, session: Session, count: int) -> list[int]:
        raise NotImplementedError

    def _insert_documents(
        self, session: Session, rows: list[dict[str, Any]], texts: list[AnalysedText]
    ) -> None:
        raise NotImplementedError

    def _delete_text(self, session: Session, doc_ids: Sequence[int]) -> None:
        """Remove engine-specific text rows (the FTS5 rows); nothing to do for a column."""

    def _match(self, terms: Sequence[QueryTerm], params: Params) -> MatchSql:
        raise NotImplementedError

    # ---- writes ---------------------------------------------------------------------------
    def index(self, session: Session, docs: Sequence[SearchDocument]) -> None:
        """Insert or replace documents in the caller's transaction (executemany per table)."""
        latest: dict[str, SearchDocument] = {d["dataset_id"]: d for d in docs}
        if not latest:
            return
        existing = self._existing_doc_ids(session, list(latest))
        self._delete_doc_ids(session, list(existing.values()))
        missing = [i for i in latest if i not in existing]
        fresh = iter(self._allocate_doc_ids(session, len(missing)))
        ids = {i: existing[i] if i in existing else next(fresh) for i in latest}
        rows = [document_row(ids[i], doc) for i, doc in latest.items()]
        texts = [analyse_document(doc) for doc in latest.values()]
        self._insert_documents(session, rows, texts)
        facets = [
            {"doc_id": ids[i], "field": f, "value": v}
            for i, doc in latest.items()
            for f, v in facet_values(doc)
        ]
        if facets:
            executemany(session, "INSERT INTO search_facet (field, value, doc_id) "
                                 "VALUES (:field, :value, :doc_id)", facets)

    def remove(self, session: Session, dataset_ids: Sequence[str]) -> None:
        existing = self._existing_doc_ids(session, list(dataset_ids))
        self._delete_doc_ids(session, list(existing.values()))

    def _existing_doc_ids(self, session: Session, dataset_ids: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(dataset_ids), _CHUNK):
            params = Params()
            placeholders = params.bind_list(dataset_ids[start : start + _CHUNK])
            result = session.execute(
                text(f"SELECT dataset_id, doc_id FROM search_document "  # noqa: S608
                     f"WHERE dataset_id IN {placeholders}"),
                params.values,
            )
            found.update({row[0]: int(row[1]) for row in result})
        return found

    def _delete_doc_ids(self, session: Session, doc_ids: list[int]) -> None:
        for start in range(0, len(doc_ids), _CHUNK):
            chunk = doc_ids[start : start + _CHUNK]
            params = Params()
            placeholders = params.bind_list(chunk)
            for table in ("search_facet", "search_document"):
                session.execute(
                    text(f"DELETE FROM {table} WHERE doc_id IN {placeholders}"),  # noqa: S608
                    params.values,
                )
            self._delete_text(session, chunk)

    # ---- reads ----------------------------------------------------------------------------
    def count(self, session: Session) -> int:
        return int(session.execute(text("SELECT count(*) FROM search_document")).scalar_one())

    def indexed_versions(self, session: Session) -> dict[str, int]:
        """dataset_id -> indexed version (lets the registry check for drift, as for ES)."""
        rows = session.execute(text("SELECT dataset_id, version FROM search_document"))
        return {row[0]: int(row[1]) for row in rows}

    def search(self, session: Session, query: SearchQuery) -> SearchResults:
        query.validate()
        terms = query_terms(query.q)
        params = Params()
        match = self._match(terms, params) if terms else None
        conditions = self._conditions(query, params)
        candidate = " AND ".join(
            ([match.condition] if match else []) + conditions
        ) or "1 = 1"
        total = int(session.execute(
            text(f"SELECT count(*) FROM search_document d WHERE {candidate}"),  # noqa: S608
            params.values,
        ).scalar_one())
        facets = self._facet_counts(session, list(query.facets), candidate, params,
                                    query.facet_limit)
        hits, next_cursor = self._page(session, query, terms, match, conditions, params)
        return SearchResults(total=total, hits=hits, facets=facets, next_cursor=next_cursor)

    def _conditions(self, query: SearchQuery, params: Params) -> list[str]:
        conditions = [self._visibility(query, params)]
        for facet in sorted(query.filters):
            values = [v.upper() if facet == "format" else v for v in query.filters[facet]]
            if not values:
                continue
            conditions.append(
                "d.doc_id IN (SELECT doc_id FROM search_facet WHERE field = "  # noqa: S608
                f"{params.bind(facet)} AND value IN {params.bind_list(values)})"
            )
        if query.issued_from is not None:
            conditions.append(f"d.issued_key >= {params.bind(issued_key(query.issued_from))}")
        if query.issued_to is not None:
            conditions.append(
                f"d.issued_key <> '' AND d.issued_key <= {params.bind(issued_key(query.issued_to))}"
            )
        if query.modified_from is not None:
            conditions.append(
                f"d.modified_key >= {params.bind(modified_key(query.modified_from))}"
            )
        if query.modified_to is not None:
            conditions.append(
                f"d.modified_key <> '' AND d.modified_key <= "
                f"{params.bind(end_of_modified_range(query.modified_to))}"
            )
        return conditions

    @staticmethod
    def _visibility(query: SearchQuery, params: Params) -> str:
        states = ["published", "withdrawn"] if query.include_withdrawn else ["published"]
        viewer = query.viewer
        if not viewer.government:
            return (f"d.visibility = {params.bind('public')} "
                    f"AND d.state IN {params.bind_list(states)}")
        listed = f"d.state IN {params.bind_list(states)}"
        if not viewer.organization_ids:
            return listed
        own_drafts = (f"(d.state = {params.bind('draft')} AND d.organization_id IN "
                      f"{params.bind_list(sorted(viewer.organization_ids))})")
        return f"({listed} OR {own_drafts})"

    @staticmethod
    def _facet_counts(
        session: Session, names: list[str], candidate: str, params: Params, limit: int
    ) -> dict[str, list[tuple[str, int]]]:
        """All requested facets in one pass over the match set: for each matching document
        the (doc_id, field, value) index yields its facet values, so the cost is one index
        range per match, whatever the number of facets."""
        if not names:
            return {}
        local = Params(dict(params.values))
        sql = (
            "SELECT field, value, count(*) AS n FROM search_facet "  # noqa: S608
            f"WHERE field IN {local.bind_list(names)} AND doc_id IN "
            f"(SELECT d.doc_id FROM search_document d WHERE {candidate}) "
            "GROUP BY field, value"
        )
        grouped: dict[str, list[tuple[str, int]]] = {name: [] for name in names}
        for field_, value, n in session.execute(text(sql), local.values):
            grouped[field_].append((value, int(n)))
        return {
            name: sorted(counts, key=lambda vc: (-vc[1], vc[0]))[:limit]
            for name, counts in grouped.items()
        }

    def _page(
        self,
        session: Session,
        query: SearchQuery,
        terms: Sequence[QueryTerm],
        match: MatchSql | None,
        conditions: list[str],
        params: Params,
    ) -> tuple[list[Hit], str | None]:
        sort = effective_sort(query.sort, has_text=match is not None)
        local = Params(dict(params.values))
        if sort == "relevance" and match is not None:
            where = " AND ".join([match.ranked_condition, *conditions])
            inner = (f"SELECT {_DOC_COLUMNS}, {match.score} AS score "  # noqa: S608
                     f"FROM {match.from_clause} WHERE {where}")
        else:
            where = " AND ".join(([match.condition] if match else []) + conditions)
            inner = (f"SELECT {_DOC_COLUMNS}, 0.0 AS score "  # noqa: S608
                     f"FROM search_document d WHERE {where}")
        key_column, descending = SORT_KEYS[sort]
        keyset = ""
        if query.cursor:
            last_key, last_id = decode_cursor(query.cursor, sort)
            op = "<" if descending else ">"
            k = local.bind(last_key)
            keyset = (f"WHERE (s.{key_column} {op} {k} OR (s.{key_column} = {k} "
                      f"AND s.doc_id > {local.bind(int(last_id))}))")
        direction = "DESC" if descending else "ASC"
        sql = (f"SELECT * FROM ({inner}) s {keyset} "  # noqa: S608
               f"ORDER BY s.{key_column} {direction}, s.doc_id ASC "
               f"LIMIT {local.bind(query.limit + 1)}")
        rows = [dict(r._mapping) for r in session.execute(text(sql), local.values)]
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        hits = [
            Hit(dataset_id=r["dataset_id"], slug=r["slug"], score=float(r["score"]),
                highlights=highlights_for(r, terms))
            for r in rows
        ]
        next_cursor = None
        if more and rows:
            last = rows[-1]
            next_cursor = encode_cursor(sort, [last[key_column], int(last["doc_id"])])
        return hits, next_cursor


def executemany(session: Session, sql: str, rows: list[dict[str, Any]]) -> None:
    """A straight DBAPI executemany in the session's transaction.

    Bulk import sends ~500 documents (and ~10x as many facet rows) per call; going through
    ``text()`` costs more in parameter processing than the database spends inserting.
    ``sql`` uses :name placeholders, rewritten to the driver's style when it is "pyformat".
    """
    connection = session.connection()
    if connection.dialect.paramstyle == "pyformat":
        sql = _NAMED_PARAM_RE.sub(r"%(\1)s", sql)
    connection.exec_driver_sql(sql, rows)  # type: ignore[arg-type]


_NAMED_PARAM_RE = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")


# sort order -> (column of the inner select, descending?)
SORT_KEYS: dict[str, tuple[str, bool]] = {
    "relevance": ("score", True),
    "modified": ("modified_key", False),
    "-modified": ("modified_key", True),
    "title": ("title_sort", False),
}


def effective_sort(sort: str, *, has_text: bool) -> str:
    """Without query text every score is equal, so "relevance" means newest first."""
    if sort == "relevance" and not has_text:
        return "-modified"
    return sort


def end_of_modified_range(value: datetime | date) -> str:
    """Upper bound of a modified range: a bare date includes that whole day."""
    if isinstance(value, datetime):
        return modified_key(value) or ""
    return value.strftime("%Y-%m-%dT23:59:59")
