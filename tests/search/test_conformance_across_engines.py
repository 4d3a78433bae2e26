"""Engines against each other on one corpus: identical totals and facet counts on every
engine (Tantivy, the legacy in-database path, the cluster once in conftest.ENGINES), and the
same top 10 on every engine that translates the query plan."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.database import Database
from search import SearchBackend, SearchQuery, Viewer
from tests.search.conftest import ENGINES
from tests.search.test_ranking_rules import PLAN_ENGINES
from tests.search.test_search_backends import corpus, load

FACETS = ["theme", "format", "publisher", "data_grade", "license"]
OFFICIAL = Viewer.government_user(["cn-00-01"])
QUERIES: list[SearchQuery] = [
    SearchQuery(q="交通", facets=FACETS),
    SearchQuery(q="医疗", facets=FACETS),
    SearchQuery(q="统计 数据", facets=FACETS),
    SearchQuery(q="water", facets=FACETS),
    SearchQuery(q="health data ", facets=FACETS),
    SearchQuery(q="medic", facets=FACETS),
    SearchQuery(facets=FACETS),
    SearchQuery(q="数据", filters={"format": ["csv"]}, facets=FACETS),
    SearchQuery(filters={"theme": ["health"], "data_grade": ["general"]}, facets=FACETS),
    SearchQuery(q="数据", viewer=OFFICIAL, facets=FACETS),
    SearchQuery(q="数据", include_withdrawn=True, facets=FACETS),
    SearchQuery(viewer=OFFICIAL, include_withdrawn=True, facets=FACETS),
]


@pytest.fixture
def engines(db: Database, tmp_path: Path) -> Iterator[dict[str, SearchBackend]]:
    built = {name: make(db, tmp_path / name) for name, make in ENGINES.items()}
    docs = corpus()
    for engine in built.values():
        load(engine, db, docs)
    yield built
    for engine in built.values():
        release = getattr(engine, "release", None)
        if release is not None:
            release()


def test_every_engine_finds_the_same_totals_and_facet_counts(
    engines: dict[str, SearchBackend], db: Database
) -> None:
    with db.read() as session:
        answers = {name: [engine.search(session, q) for q in QUERIES]
                   for name, engine in engines.items()}
    reference_name, reference = next(iter(answers.items()))
    assert all(r.total > 0 for r in reference)
    for name, results in answers.items():
        for query, mine, theirs in zip(QUERIES, results, reference, strict=True):
            assert mine.total == theirs.total, (name, reference_name, query.q, query.filters)
            assert mine.facets == theirs.facets, (name, reference_name, query.q)


def test_plan_engines_agree_on_the_top_10(
    engines: dict[str, SearchBackend], db: Database
) -> None:
    plan_engines = {n: e for n, e in engines.items() if n in PLAN_ENGINES}
    with db.read() as session:
        tops = {name: [[h.dataset_id for h in engine.search(session, SearchQuery(
            **{**q.__dict__, "limit": 10})).hits] for q in QUERIES]
            for name, engine in plan_engines.items()}
        totals = [next(iter(plan_engines.values())).search(session, q).total for q in QUERIES]
    first = next(iter(tops.values()))
    assert [len(top) for top in first] == [min(10, t) for t in totals]
    for name, top in tops.items():
        assert top == first, name


def test_cursor_pages_are_the_same_on_plan_engines(
    engines: dict[str, SearchBackend], db: Database
) -> None:
    pages: dict[str, list[str]] = {}
    for name, engine in engines.items():
        if name not in PLAN_ENGINES:
            continue
        ids: list[str] = []
        cursor = None
        with db.read() as session:
            for _ in range(200):
                page = engine.search(session, SearchQuery(q="数据", sort="title", limit=13,
                                                          cursor=cursor))
                ids += [h.dataset_id for h in page.hits]
                cursor = page.next_cursor
                if cursor is None:
                    break
        assert len(ids) == len(set(ids))
        pages[name] = ids
    assert len({tuple(v) for v in pages.values()}) == 1
