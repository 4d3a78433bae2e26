"""PostgreSQL backend: a weighted tsvector column with a GIN index on ``search_document``,
written in the caller's transaction.

The tsvector and tsquery are built as *literals* from ``search.analysis`` tokens and cast
(``CAST(:v AS tsvector)``), so no text-search configuration, parser or server locale touches
them: PostgreSQL agrees with SQLite token for token. Weights: title A, keywords B,
publisher C, description D; ``ts_rank`` with the default weight array {0.1, 0.2, 0.4, 1.0}.
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

MAX_POSITION = 16383  # PostgreSQL's limit; later positions are clamped to it
COLUMN_GAP = 8  # so a phrase never spans two fields


def tsquote(token: str) -> str:
    """A quoted lexeme for tsvector/tsquery input syntax."""
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector_literal(text_: AnalysedText) -> str:
    positions: dict[str, list[str]] = {}
    position = 0
    for weight, stream in (("A", text_.title), ("B", text_.keywords),
                           ("C", text_.publisher), ("D", text_.description)):
        for token in stream.split():
            position += 1
            positions.setdefault(token, []).append(f"{min(position, MAX_POSITION)}{weight}")
        position += COLUMN_GAP
    return " ".join(f"{tsquote(tok)}:{','.join(pos)}" for tok, pos in positions.items())


def tsquery_literal(terms: Sequence[QueryTerm]) -> str:
    parts: list[str] = []
    for term in terms:
        lexemes = [tsquote(t) for t in term.tokens]
        if term.prefix:
            lexemes[-1] += ":*"
        phrase = " <-> ".join(lexemes)
        parts.append(f"({phrase})" if len(lexemes) > 1 else phrase)
    return " & ".join(parts)


class PostgresFtsBackend(SqlSearchBackend):
    name = "postgres"

    def _allocate_doc_ids(self, session: Session, count: int) -> list[int]:
        if count == 0:
            return []
        result = session.execute(
            text("SELECT nextval('search_document_doc_id_seq') FROM generate_series(1, :n)"),
            {"n": count},
        )
        return [int(r[0]) for r in result]

    def _insert_documents(
        self, session: Session, rows: list[dict[str, Any]], texts: list[AnalysedText]
    ) -> None:
        executemany(
            session,
            (
                "INSERT INTO search_document (doc_id, dataset_id, slug, version, state, "
                "visibility, organization_id, title_sort, modified_key, issued_key, title_zh, "
                "title_en, description_zh, description_en, tsv) VALUES (:doc_id, :dataset_id, "
                ":slug, :version, :state, :visibility, :organization_id, :title_sort, "
                ":modified_key, :issued_key, :title_zh, :title_en, :description_zh, "
                ":description_en, CAST(:tsv AS tsvector))"
            ),
            [{**row, "tsv": tsvector_literal(t)} for row, t in zip(rows, texts, strict=True)],
        )

    def _match(self, terms: Sequence[QueryTerm], params: Params) -> MatchSql:
        query = f"CAST({params.bind(tsquery_literal(terms))} AS tsquery)"
        condition = f"d.tsv @@ {query}"
        return MatchSql(
            condition=condition,
            from_clause="search_document d",
            ranked_condition=condition,
            # float8: psycopg rounds a float4 to its shortest text form, and a keyset cursor
            # must compare against exactly the value the database ordered by.
            score=f"CAST(ts_rank(d.tsv, {query}) AS double precision)",
        )
