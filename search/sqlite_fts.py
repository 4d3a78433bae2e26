"""SQLite FTS5 backend: the index lives in the catalogue's own database file, so a document is
searchable exactly when the catalogue transaction that wrote it commits (and never if it rolls
back).

The FTS5 table uses the ``ascii`` tokenizer on token streams already produced by
``search.analysis``: it splits on the spaces we put there and leaves CJK bigrams intact.
Column weights for bm25: title 10, keywords 5, publisher 3, description 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from search.analysis import QueryTerm
from search.sql_backend import (
    AnalysedText,
    MatchSql,
    Params,
    SqlSearchBackend,
    executemany,
)

BM25_WEIGHTS = (10.0, 5.0, 3.0, 1.0)  # title, keywords, publisher, description


def fts5_quote(token: str) -> str:
    """An FTS5 string literal: the token in double quotes, inner quotes doubled."""
    return '"' + token.replace('"', '""') + '"'


def fts5_match_expression(terms: Sequence[QueryTerm]) -> str:
    """AND of phrases built only from analysed, quoted tokens (never raw user text)."""
    parts: list[str] = []
    for term in terms:
        phrase = fts5_quote(" ".join(term.tokens))
        parts.append(phrase + "*" if term.prefix else phrase)
    return " AND ".join(parts)


class SqliteFtsBackend(SqlSearchBackend):
    name = "sqlite"

    def _allocate_doc_ids(self, session: Session, count: int) -> list[int]:
        # Safe because SQLite serialises writers: the caller's write transaction holds the lock.
        top = session.execute(text("SELECT coalesce(max(doc_id), 0) FROM search_document"))
        first = int(top.scalar_one()) + 1
        return list(range(first, first + count))

    def _insert_documents(
        self, session: Session, rows: list[dict[str, Any]], texts: list[AnalysedText]
    ) -> None:
        executemany(
            session,
            (
                "INSERT INTO search_document (doc_id, dataset_id, slug, version, state, "
                "visibility, organization_id, title_sort, modified_key, issued_key, title_zh, "
                "title_en, description_zh, description_en) VALUES (:doc_id, :dataset_id, :slug, "
                ":version, :state, :visibility, :organization_id, :title_sort, :modified_key, "
                ":issued_key, :title_zh, :title_en, :description_zh, :description_en)"
            ),
            rows,
        )
        executemany(
            session,
            (
                "INSERT INTO search_fts (rowid, title, keywords, publisher, description) "
                "VALUES (:doc_id, :title, :keywords, :publisher, :description)"
            ),
            [
                {"doc_id": row["doc_id"], "title": t.title, "keywords": t.keywords,
                 "publisher": t.publisher, "description": t.description}
                for row, t in zip(rows, texts, strict=True)
            ],
        )

    def _delete_text(self, session: Session, doc_ids: Sequence[int]) -> None:
        params = Params()
        placeholders = params.bind_list(list(doc_ids))
        session.execute(
            text(f"DELETE FROM search_fts WHERE rowid IN {placeholders}"),  # noqa: S608
            params.values,
        )

    def _match(self, terms: Sequence[QueryTerm], params: Params) -> MatchSql:
        expression = params.bind(fts5_match_expression(terms))
        weights = ", ".join(str(w) for w in BM25_WEIGHTS)
        return MatchSql(
            condition="d.doc_id IN (SELECT rowid FROM search_fts "  # noqa: S608
                      f"WHERE search_fts MATCH {expression})",
            from_clause="search_fts JOIN search_document d ON d.doc_id = search_fts.rowid",
            ranked_condition=f"search_fts MATCH {expression}",
            score=f"-bm25(search_fts, {weights})",
        )

    def optimize(self, session: Session) -> None:
        """Merge FTS5 b-trees after a bulk import (smaller, faster index)."""
        session.execute(text("INSERT INTO search_fts (search_fts) VALUES ('optimize')"))
