"""The ranking rules of search.query_plan, one test per failure class found on real Chinese
provincial catalogues (issue 11), with entries worded as those catalogues word them.

Run on every engine that translates the plan (``PLAN_ENGINES``); the legacy in-database path
predates the plan and is not held to these rules.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.database import Database
from search import SearchBackend, SearchQuery
from search.analysis import stem
from search.query_plan import MAX_QUERY_CHARS, MAX_QUERY_TERMS, build_plan
from tests.search.conftest import ENGINES
from tests.search.test_search_backends import all_hits, blank, load

PLAN_ENGINES = ["tantivy", "opensearch"]


@pytest.fixture(params=PLAN_ENGINES)
def engine(request: pytest.FixtureRequest, db: Database, tmp_path: Path
           ) -> Iterator[SearchBackend]:
    built = ENGINES[request.param](db, tmp_path)
    yield built
    release = getattr(built, "release", None)
    if release is not None:
        release()


def top(engine: SearchBackend, db: Database, q: str, n: int = 10) -> list[str]:
    with db.read() as session:
        return [h.dataset_id for h in engine.search(session, SearchQuery(q=q, limit=n)).hits]


def test_class1_department_names_are_searchable(engine: SearchBackend, db: Database) -> None:
    load(engine, db, [
        blank("bus", title_zh="公交线路站点信息", publisher_names=["杭州市交通运输局"]),
        blank("school", title_zh="中小学校名录", publisher_names=["杭州市教育局"]),
    ])
    assert top(engine, db, "杭州市交通运输局") == ["bus"]
    assert top(engine, db, "交通运输局") == ["bus"]


def test_class2_catalogue_classification_is_searchable(
    engine: SearchBackend, db: Database
) -> None:
    load(engine, db, [
        blank("clinics", title_zh="社区卫生服务中心名录", themes=["医疗卫生"]),
        blank("parks", title_zh="城市公园名录", themes=["生态环境"]),
        blank("other", title_zh="道路信息", classification=["交通服务"]),
    ])
    assert top(engine, db, "医疗卫生") == ["clinics"]
    assert top(engine, db, "交通服务") == ["other"]  # an extra text field, no schema change


@pytest.mark.parametrize(("query", "part"), [
    ("公交车", "公交"), ("财政预算", "预算"), ("旅游景点", "景点"), ("人口统计", "人口"),
    ("失信被执行人", "失信"), ("地铁", "铁"),
])
def test_class3_compound_queries_fall_back_to_their_parts(
    engine: SearchBackend, db: Database, query: str, part: str
) -> None:
    load(engine, db, [
        blank("bus", title_zh="公交线路客流量统计", keywords=["公交"]),
        blank("budget", title_zh="市级财政收支预算表"),
        blank("tour", title_zh="A级旅游景区名录", keywords=["景点", "旅游"]),
        blank("census", title_zh="第七次人口普查数据", keywords=["人口"]),
        blank("credit", title_zh="失信企业名单", keywords=["失信"]),
        blank("rail", title_zh="城市轨道交通铁路线路"),
        blank("none", title_zh="气象观测站点"),
    ])
    with db.read() as session:
        result = engine.search(session, SearchQuery(q=query))
    assert result.total > 0, query
    assert result.loosened_query and part in result.loosened_query.split()
    assert "none" not in [h.dataset_id for h in result.hits]


def test_class3_fallback_ranks_by_how_many_parts_match(
    engine: SearchBackend, db: Database
) -> None:
    load(engine, db, [
        blank("one", title_zh="财政收入月报"),
        blank("two", title_zh="财政部门预算公开"),
    ])
    with db.read() as session:
        result = engine.search(session, SearchQuery(q="财政预算"))
    assert [h.dataset_id for h in result.hits] == ["two", "one"]


def test_class4_whole_words_rank_above_fragments(engine: SearchBackend, db: Database) -> None:
    load(engine, db, [
        blank("across", title_zh="天津市政府信息公开目录"),
        blank("word", title_zh="市政设施维护记录"),
    ])
    assert top(engine, db, "市政") == ["word", "across"]


def test_class5_repeated_text_is_not_over_rewarded(engine: SearchBackend, db: Database) -> None:
    load(engine, db, [
        blank("copy", title_zh="空气质量监测", description_zh="空气质量监测"),
        blank("said-twice", title_zh="空气质量监测 空气质量监测 空气质量"),
        blank("real", title_zh="空气质量监测", keywords=["空气质量"]),
    ])
    ranked = top(engine, db, "空气质量")
    assert ranked[0] == "real"  # a keyword says more than a description repeating the title


def test_class6_english_exact_term_above_prefix(engine: SearchBackend, db: Database) -> None:
    load(engine, db, [blank(f"reg{i}", title_en=f"Registration of vehicles {i}")
                      for i in range(4)] + [
        blank("death", title_en="Death register"),
        blank("registry", title_en="Death registry statistics"),
    ])
    assert top(engine, db, "death register")[0] == "death"
    assert top(engine, db, "death register ")[0] == "death"  # a finished word: no prefix
    assert set(top(engine, db, "death regis")) == {"death", "registry"}  # still typing


def test_class7_zero_results_offer_help(engine: SearchBackend, db: Database) -> None:
    load(engine, db, [
        blank("a", title_en="Hospital beds", keywords=["health"], themes=["health"]),
        blank("b", title_en="Clinic locations", keywords=["health"], themes=["health"]),
    ])
    with db.read() as session:
        typo = engine.search(session, SearchQuery(q="hospitl beds "))
        nothing = engine.search(session, SearchQuery(q="zzqx "))
    assert typo.suggestion == "hospital beds"
    assert typo.loosened_query == "hospitl beds"  # any of the words: "beds" matches
    assert [h.dataset_id for h in typo.hits] == ["a"]
    assert nothing.total == 0 and "health" in nothing.related


def test_long_queries_are_cut_at_the_documented_limit(
    engine: SearchBackend, db: Database
) -> None:
    load(engine, db, [blank("a", title_en="water quality")])
    long_q = "water " + "x" * 1000
    many = " ".join(f"w{i}" for i in range(100))
    with db.read() as session:
        for q in (long_q, many, "水" * 1000):
            result = engine.search(session, SearchQuery(q=q))
            assert result.truncated, q[:20]
    plan = build_plan(SearchQuery(q=many))
    assert plan.text is not None and len(plan.text.terms) == MAX_QUERY_TERMS
    assert len(build_plan(SearchQuery(q=long_q)).q) == MAX_QUERY_CHARS


def test_stemming_is_thread_safe() -> None:
    """F3: one Snowball stemmer shared by threads mixed their words up."""
    words = [f"{base}{suffix}" for base in ("register", "connect", "hospital", "educate")
             for suffix in ("", "s", "ing", "ed", "ion", "ations")] * 50
    expected = {w: stem.__wrapped__(w) for w in set(words)}
    wrong: list[str] = []

    def work() -> None:
        for w in words:
            if stem.__wrapped__(w) != expected[w]:
                wrong.append(w)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_all_hits_helper_still_pages(engine: SearchBackend, db: Database) -> None:
    load(engine, db, [blank(f"p{i}", title_en="page") for i in range(25)])
    assert sorted(all_hits(engine, db, SearchQuery(q="page", limit=4))) == sorted(
        f"p{i}" for i in range(25))
