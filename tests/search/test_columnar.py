"""The columnar snapshot must give exactly the SQL path's totals and facet counts, including
for documents changed after the snapshot was built (the overlay)."""

from __future__ import annotations

import itertools
import random
from datetime import date

import pytest
from sqlalchemy.orm import Session

from search import FACET_FIELDS, SearchQuery, Viewer, create_search_schema, make_backend

TOPICS = ["交通", "医疗", "教育", "统计", "health", "transport", "school", "data"]


def _document(i: int, rng: random.Random) -> dict:
    topic = rng.choice(TOPICS)
    org = rng.choice(["mot", "mot-roads", "moe", "nhc"])
    path = ["mot", org] if org == "mot-roads" else [org]
    return {
        "dataset_id": f"d{i}", "slug": f"d{i}", "version": 1,
        "state": rng.choice(["published"] * 6 + ["draft", "withdrawn"]),
        "visibility": rng.choice(["public"] * 4 + ["government"]),
        "organization_id": org, "organization_path": path, "publisher_names": [org],
        "title_zh": f"{topic}数据集{i}", "title_en": f"{topic} dataset {i}",
        "description_zh": None, "description_en": f"about {topic}",
        "keywords": rng.sample(TOPICS, rng.randint(0, 3)),
        "themes": rng.sample(["TRAN", "HEAL", "EDUC"], rng.randint(0, 2)),
        "formats": rng.sample(["CSV", "JSON", "XLSX"], rng.randint(0, 2)),
        "license": rng.choice([None, "CC-BY-4.0", "OGL"]),
        "sharing_type": rng.choice([None, "unconditional", "conditional"]),
        "open_attribute": rng.choice([None, "open", "closed"]),
        "update_cycle": rng.choice([None, "monthly", "annual"]),
        "data_grade": rng.choice([None, "general", "important"]),
        "region": rng.choice([None, "110000", "310000"]),
        "issued": rng.choice([None, date(2020, 1, 1), date(2023, 6, 1)]),
        "modified": date(2024, rng.randint(1, 12), rng.randint(1, 28)),
    }


QUERIES = [
    SearchQuery(facets=FACET_FIELDS),
    SearchQuery(q="交通", facets=FACET_FIELDS),
    SearchQuery(q="health", facets=("keyword", "format")),
    SearchQuery(filters={"publisher": ["mot"]}, facets=FACET_FIELDS),
    # Matches most of what is visible: counted as "all eligible minus the rest".
    SearchQuery(filters={"publisher": ["mot", "moe", "nhc"]}, facets=FACET_FIELDS),
    SearchQuery(q="data", filters={"format": ["csv"], "theme": ["TRAN", "HEAL"]},
                facets=("theme", "format", "license")),
    SearchQuery(issued_from=date(2021, 1, 1), modified_to=date(2024, 6, 30),
                facets=("region", "update_cycle")),
    SearchQuery(viewer=Viewer.government_user(["moe"]), facets=FACET_FIELDS),
    SearchQuery(include_withdrawn=True, q="教育", facets=("publisher",)),
]


@pytest.fixture
def backend_and_engine(database_url: str):  # type: ignore[no-untyped-def]
    from registry.database import make_engine

    engine = make_engine(database_url)
    with engine.begin() as connection:
        create_search_schema(connection)
    backend = make_backend("sqlite" if database_url.startswith("sqlite") else "postgres")
    yield backend, engine
    engine.dispose()


def _both_paths(backend, session: Session, query: SearchQuery):  # type: ignore[no-untyped-def]
    snapshot, backend.columnar._snapshot = backend.columnar._snapshot, None
    sql = backend.search(session, query)
    backend.columnar._snapshot = snapshot
    fast = backend.search(session, query)
    return sql, fast


def _index_and_snapshot(backend, engine, docs: list[dict]) -> None:  # type: ignore[no-untyped-def]
    """Commit `docs` to the index, then build the columnar snapshot from it."""
    with Session(engine.execution_options(write=True)) as session:
        backend.index(session, docs)
        session.commit()
    with Session(engine) as session:
        backend.columnar.rebuild(session)


def test_columnar_counts_equal_sql_counts(backend_and_engine) -> None:  # type: ignore[no-untyped-def]
    backend, engine = backend_and_engine
    rng = random.Random(7)
    _index_and_snapshot(backend, engine, [_document(i, rng) for i in range(300)])
    with Session(engine) as session:
        for query in QUERIES:
            sql, fast = _both_paths(backend, session, query)
            assert fast.total == sql.total, query
            assert fast.facets == sql.facets, query
            assert [h.dataset_id for h in fast.hits] == [h.dataset_id for h in sql.hits]
    # Changes after the snapshot: replaced, new and removed documents go through the overlay.
    with Session(engine.execution_options(write=True)) as session:
        backend.index(session, [_document(i, rng) for i in itertools.chain(range(0, 40),
                                                                             range(300, 330))])
        backend.remove(session, [f"d{i}" for i in range(100, 110)])
        session.commit()
    with Session(engine) as session:
        for query in QUERIES:
            sql, fast = _both_paths(backend, session, query)
            assert backend.columnar._snapshot.overlay, "the overlay should be in use"
            assert fast.total == sql.total, query
            assert fast.facets == sql.facets, query


def test_a_rolled_back_write_is_not_counted(backend_and_engine) -> None:  # type: ignore[no-untyped-def]
    backend, engine = backend_and_engine
    rng = random.Random(3)
    _index_and_snapshot(backend, engine, [_document(i, rng) for i in range(50)])
    with Session(engine) as session:
        before = backend.search(session, SearchQuery(facets=("format",))).total
    with Session(engine.execution_options(write=True)) as session:
        backend.index(session, [dict(_document(999, rng), state="published",
                                     visibility="public")])
        session.rollback()
    with Session(engine) as session:
        assert backend.search(session, SearchQuery(facets=("format",))).total == before


def test_snapshot_pages_equal_sql_pages_and_cursors_interoperate(backend_and_engine) -> None:  # type: ignore[no-untyped-def]
    """Browsing newest/oldest first from the snapshot gives the SQL path's pages, and a cursor
    from either path continues on the other."""
    backend, engine = backend_and_engine
    rng = random.Random(11)
    _index_and_snapshot(backend, engine, [_document(i, rng) for i in range(120)])
    with Session(engine) as session:
        for sort in ("-modified", "modified"):
            for filters in ({}, {"publisher": ["mot"]}):
                query = SearchQuery(sort=sort, filters=filters, limit=7)
                seen_fast, seen_sql, cursor = [], [], None
                while True:
                    sql, fast = _both_paths(backend, session,
                                            SearchQuery(sort=sort, filters=filters, limit=7,
                                                        cursor=cursor))
                    assert [h.dataset_id for h in fast.hits] == [h.dataset_id for h in sql.hits]
                    assert fast.next_cursor == sql.next_cursor
                    seen_fast += [h.dataset_id for h in fast.hits]
                    seen_sql += [h.dataset_id for h in sql.hits]
                    cursor = fast.next_cursor
                    if cursor is None:
                        break
                assert seen_fast == seen_sql and len(set(seen_fast)) == sql.total
                assert query.limit == 7
