"""The conformance suite: every engine (Tantivy, the legacy in-database path; the cluster when
its fixture is added in conftest.ENGINES) against a real database, checked against answers
computed independently from the fixture documents."""

from __future__ import annotations

import os
import random
import re
from collections import Counter
from collections.abc import Iterable
from datetime import date

import pytest

from bench.corpus import chinese_corpus, generate_corpus
from registry.database import Database
from search import SearchBackend, SearchDocument, SearchQuery, Viewer
from search.documents import FACET_SOURCES
from tests.search.conftest import IN_TRANSACTION

SOURCE_DIR = os.environ.get("NDR_DATAJSON_DIR", "/work/shared/data/us-federal-datajson")

ANON = Viewer.anonymous()


def corpus() -> list[SearchDocument]:
    real = list(generate_corpus(SOURCE_DIR, 150))
    zh = [{**d, "dataset_id": f"zh-{d['dataset_id']}", "slug": f"zh-{d['slug']}"}
          for d in chinese_corpus(250)]
    return real + zh  # type: ignore[return-value]


def blank(dataset_id: str, **fields: object) -> SearchDocument:
    doc = {
        "dataset_id": dataset_id, "slug": dataset_id, "version": 1, "state": "published",
        "visibility": "public", "organization_id": "org", "organization_path": ["root", "org"],
        "publisher_names": [], "title_zh": None, "title_en": None, "description_zh": None,
        "description_en": None, "keywords": [], "themes": [], "formats": [], "license": None,
        "sharing_type": None, "open_attribute": None, "update_cycle": None, "data_grade": None,
        "region": None, "issued": None, "modified": None,
    }
    doc.update(fields)
    return doc  # type: ignore[return-value]


def visible(doc: SearchDocument, viewer: Viewer, include_withdrawn: bool = False) -> bool:
    """The visibility rules, restated from the specification."""
    states = {"published", "withdrawn"} if include_withdrawn else {"published"}
    if not viewer.government:
        return doc["visibility"] == "public" and doc["state"] in states
    if doc["state"] == "draft":
        return doc["organization_id"] in viewer.organization_ids
    return doc["state"] in states


def searchable_text(doc: SearchDocument) -> str:
    fields = [doc["title_zh"], doc["title_en"], doc["description_zh"], doc["description_en"],
              *doc["keywords"], *doc["themes"], *doc["publisher_names"]]
    return " | ".join(f for f in fields if f)


def all_hits(backend: SearchBackend, db: Database, query: SearchQuery) -> list[str]:
    """Every hit, following cursors to the end."""
    ids: list[str] = []
    cursor = None
    with db.read() as session:
        while True:
            page = backend.search(session, SearchQuery(**{**query.__dict__, "cursor": cursor}))
            ids.extend(h.dataset_id for h in page.hits)
            cursor = page.next_cursor
            if cursor is None:
                return ids


def load(backend: SearchBackend, db: Database, docs: Iterable[SearchDocument]) -> None:
    with db.write() as session:
        backend.index(session, list(docs))


@pytest.fixture
def loaded(backend: SearchBackend, db: Database) -> list[SearchDocument]:
    docs = corpus()
    load(backend, db, docs)
    return docs


@pytest.mark.parametrize("word", ["交通", "医疗", "教育", "统计", "公交线路"])
def test_chinese_word_matches_exactly_the_documents_containing_it(
    backend: SearchBackend, db: Database, loaded: list[SearchDocument], word: str
) -> None:
    expected = {d["dataset_id"] for d in loaded
                if visible(d, ANON) and word in searchable_text(d)}
    assert expected, "fixture must contain the word"
    assert set(all_hits(backend, db, SearchQuery(q=word, limit=100))) == expected


def test_fragments_of_long_chinese_titles_find_their_document(
    backend: SearchBackend, db: Database, loaded: list[SearchDocument]
) -> None:
    rng = random.Random(5)
    targets = [d for d in loaded if d["title_zh"] and visible(d, ANON)]
    for doc in rng.sample(targets, 25):
        # a Chinese fragment: cut inside the longest run of Chinese characters of the title
        title = max(re.findall(r"[\u4e00-\u9fff]+", doc["title_zh"] or ""), key=len)
        start = rng.randrange(0, max(1, len(title) - 6))
        fragment = title[start : start + 6]
        hits = set(all_hits(backend, db, SearchQuery(q=fragment, limit=200)))
        containing = {d["dataset_id"] for d in loaded
                      if visible(d, ANON) and fragment in searchable_text(d)}
        assert doc["dataset_id"] in hits, fragment
        assert containing <= hits, fragment


def test_english_prefix_and_stem_matching(
    backend: SearchBackend, db: Database, loaded: list[SearchDocument]
) -> None:
    def has_word_starting(doc: SearchDocument, prefix: str) -> bool:
        return any(w.lower().startswith(prefix)
                   for w in searchable_text(doc).replace("-", " ").split())

    hits = set(all_hits(backend, db, SearchQuery(q="medic", limit=100)))
    expected = {d["dataset_id"] for d in loaded
                if visible(d, ANON) and has_word_starting(d, "medic")}
    assert expected and expected <= hits


def test_mixed_chinese_and_english_query_requires_both(
    backend: SearchBackend, db: Database
) -> None:
    load(backend, db, [
        blank("both", title_zh="公交线路", title_en="Bus routes"),
        blank("zh-only", title_zh="公交线路"),
        blank("en-only", title_en="Bus routes"),
    ])
    assert all_hits(backend, db, SearchQuery(q="公交 routes")) == ["both"]


def test_title_outranks_keywords_outranks_description(
    backend: SearchBackend, db: Database
) -> None:
    filler = "annual report of the agency with tables and figures"
    load(backend, db, [
        blank("in-description", title_en="Annual report", description_en=f"hydrology {filler}"),
        blank("in-keywords", title_en="Annual report", keywords=["hydrology"],
              description_en=filler),
        blank("in-title", title_en="Hydrology annual report", description_en=filler),
        blank("unrelated", title_en="Annual report", description_en=filler),
        blank("zh-desc", title_en="Other", description_zh="本数据包含水文监测结果"),
        blank("zh-title", title_zh="水文监测站点", description_en=filler),
    ])
    assert all_hits(backend, db, SearchQuery(q="hydrology")) == [
        "in-title", "in-keywords", "in-description"]
    assert all_hits(backend, db, SearchQuery(q="水文监测")) == ["zh-title", "zh-desc"]


def test_publisher_names_are_searchable(backend: SearchBackend, db: Database) -> None:
    load(backend, db, [blank("a", title_en="Roads", publisher_names=["交通运输部"]),
                       blank("b", title_en="Roads")])
    assert all_hits(backend, db, SearchQuery(q="交通运输部")) == ["a"]


FACETS = list(FACET_SOURCES)


def expected_facets(docs: list[SearchDocument]) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = {f: Counter() for f in FACETS}
    for doc in docs:
        for facet, source in FACET_SOURCES.items():
            raw = doc[source]  # type: ignore[literal-required]
            values = set(raw) if isinstance(raw, list) else {raw}
            counts[facet].update(str(v).upper() if facet == "format" else str(v)
                                 for v in values if v)
    return counts


@pytest.mark.parametrize(("q", "filters"), [
    ("", {}),
    ("交通", {}),
    ("", {"theme": ["health", "education"]}),
    ("数据", {"format": ["csv"], "data_grade": ["general"]}),
    ("", {"publisher": ["cn-00"]}),
])
def test_facet_counts_cover_the_whole_match_set(
    backend: SearchBackend, db: Database, loaded: list[SearchDocument],
    q: str, filters: dict[str, list[str]],
) -> None:
    def passes(doc: SearchDocument) -> bool:
        if not visible(doc, ANON) or (q and q not in searchable_text(doc)):
            return False
        for facet, values in filters.items():
            raw = doc[FACET_SOURCES[facet]]  # type: ignore[literal-required]
            have = {str(v).upper() for v in (raw if isinstance(raw, list) else [raw]) if v}
            if not have & {v.upper() for v in values}:
                return False
        return True

    matching = [d for d in loaded if passes(d)]
    with db.read() as session:
        result = backend.search(session, SearchQuery(q=q, filters=filters, facets=FACETS,
                                                     limit=5, facet_limit=1000))
    assert result.total == len(matching)
    expected = expected_facets(matching)
    for facet in FACETS:
        assert dict(result.facets[facet]) == dict(expected[facet]), facet


def test_date_ranges(backend: SearchBackend, db: Database, loaded: list[SearchDocument]) -> None:
    low, high = date(2018, 1, 1), date(2020, 12, 31)
    expected = {d["dataset_id"] for d in loaded if visible(d, ANON) and d["issued"]
                and low <= d["issued"] <= high}
    hits = all_hits(backend, db, SearchQuery(issued_from=low, issued_to=high, limit=200))
    assert expected and set(hits) == expected
    modified = {d["dataset_id"] for d in loaded if visible(d, ANON) and d["modified"] is not None
                and str(d["modified"])[:10] >= "2022-06-01"}
    hits = all_hits(backend, db, SearchQuery(modified_from=date(2022, 6, 1), limit=200))
    assert set(hits) == modified


@pytest.mark.parametrize("sort", ["relevance", "modified", "-modified", "title"])
@pytest.mark.parametrize("q", ["", "数据", "data"])
def test_cursor_pagination_returns_every_match_once_in_order(
    backend: SearchBackend, db: Database, loaded: list[SearchDocument], sort: str, q: str
) -> None:
    with db.read() as session:
        total = backend.search(session, SearchQuery(q=q, limit=1)).total
    ids = all_hits(backend, db, SearchQuery(q=q, sort=sort, limit=7))  # type: ignore[arg-type]
    assert len(ids) == len(set(ids)) == total > 7
    by_id = {d["dataset_id"]: d for d in loaded}
    if sort == "title":
        keys = [(by_id[i]["title_zh"] or by_id[i]["title_en"] or "").casefold() for i in ids]
        assert keys == sorted(keys)
    if sort in ("modified", "-modified"):
        keys = [str(by_id[i]["modified"] or "")[:10] for i in ids]
        assert keys == sorted(keys, reverse=sort == "-modified")


def test_visibility_rules(backend: SearchBackend, db: Database) -> None:
    load(backend, db, [
        blank("pub", title_en="river data"),
        blank("gov", title_en="river data", visibility="government"),
        blank("draft-mine", title_en="river data", state="draft", organization_id="mine"),
        blank("draft-other", title_en="river data", state="draft", organization_id="other"),
        blank("withdrawn", title_en="river data", state="withdrawn"),
        blank("gov-withdrawn", title_en="river data", state="withdrawn", visibility="government"),
    ])
    anon = set(all_hits(backend, db, SearchQuery(q="river")))
    assert anon == {"pub"}
    assert set(all_hits(backend, db, SearchQuery(q="river", include_withdrawn=True))) == {
        "pub", "withdrawn"}
    official = Viewer.government_user(["mine"])
    assert set(all_hits(backend, db, SearchQuery(q="river", viewer=official))) == {
        "pub", "gov", "draft-mine"}
    assert set(all_hits(backend, db, SearchQuery(q="river", viewer=official,
                                                 include_withdrawn=True))) == {
        "pub", "gov", "draft-mine", "withdrawn", "gov-withdrawn"}


def test_rolled_back_write_is_not_searchable(backend: SearchBackend, db: Database) -> None:
    with pytest.raises(RuntimeError), db.write() as session:
        backend.index(session, [blank("ghost", title_en="phantom river")])
        seen_inside = backend.search(session, SearchQuery(q="phantom")).total
        assert seen_inside == (1 if backend.name in IN_TRANSACTION else 0)
        raise RuntimeError("abort the catalogue transaction")
    assert all_hits(backend, db, SearchQuery(q="phantom")) == []
    with db.read() as session:
        assert backend.count(session) == 0


def test_reindex_replaces_and_remove_deletes(backend: SearchBackend, db: Database) -> None:
    load(backend, db, [blank("x", title_en="old name", formats=["CSV"])])
    load(backend, db, [blank("x", title_en="new name", formats=["JSON"], version=2)])
    assert all_hits(backend, db, SearchQuery(q="old")) == []
    assert all_hits(backend, db, SearchQuery(q="new")) == ["x"]
    with db.read() as session:
        result = backend.search(session, SearchQuery(facets=["format"]))
        assert result.facets["format"] == [("JSON", 1)]
        assert backend.count(session) == 1
    with db.write() as session:
        backend.remove(session, ["x"])
    assert all_hits(backend, db, SearchQuery(q="new")) == []


@pytest.mark.parametrize("q", ['"', 'a" OR "b', "NEAR(a b)", "*", "title:x", "'; DROP TABLE x; --",
                               "(", "a AND", "-x", "交通\" OR 1"])
def test_query_syntax_from_users_is_treated_as_text(
    backend: SearchBackend, db: Database, q: str
) -> None:
    load(backend, db, [blank("a", title_en="x river", title_zh="交通")])
    with db.read() as session:
        result = backend.search(session, SearchQuery(q=q))
    assert result.total in (0, 1)


def test_highlights_mark_matches_and_escape_html(backend: SearchBackend, db: Database) -> None:
    load(backend, db, [blank("h", title_en="<b>Bus</b> routes", title_zh="北京市公交线路")])
    with db.read() as session:
        hit = backend.search(session, SearchQuery(q="公交 bus")).hits[0]
    assert hit.highlights["title_en"] == "&lt;b&gt;<mark>Bus</mark>&lt;/b&gt; routes"
    assert hit.highlights["title_zh"] == "北京市<mark>公交</mark>线路"


@pytest.mark.parametrize("raw", [
    {"s": "-modified", "k": [None, None]},  # F9: was a 500
    {"s": "-modified", "o": 7, "k": [None, None]},
    {"s": "-modified", "o": 7, "k": [True, "x"]},
    {"s": "-modified", "o": 7, "k": ["2024-01-01T00:00:00"]},
    {"s": "-modified", "o": 7, "k": [{"a": 1}, "x"]},
    {"s": "title", "o": 7, "k": ["a", "x"]},
    ["-modified", 1],
])
def test_malformed_cursors_are_refused_by_every_engine(
    backend: SearchBackend, db: Database, raw: object
) -> None:
    import base64
    import json

    from search import InvalidCursor

    load(backend, db, [blank("a", title_en="x")])
    cursor = base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")
    with db.read() as session, pytest.raises(InvalidCursor):
        backend.search(session, SearchQuery(sort="-modified", cursor=cursor))
