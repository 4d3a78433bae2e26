"""Known-item relevance floors on the real US catalogue and on generated Chinese entries; and
the failure classes of issue 11 guarded with real examples, through the public search API."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from bench.corpus import chinese_corpus, load_real_entries, real_document
from bench.known_items import (
    chinese_known_items,
    english_known_items,
    evaluate,
    make_all_visible,
)
from registry.database import Database
from search import SearchBackend

SOURCE_DIR = os.environ.get("NDR_DATAJSON_DIR", "/work/shared/data/us-federal-datajson")


def test_known_items_rank_in_top_10(backend: SearchBackend, db: Database) -> None:
    import random

    real = [real_document(i, e, random.Random(i), vary=False)
            for i, e in enumerate(load_real_entries(SOURCE_DIR))]
    zh = [{**d, "dataset_id": f"zh-{d['dataset_id']}"} for d in chinese_corpus(1500)]
    real, zh = make_all_visible(real), make_all_visible(zh)  # type: ignore[arg-type]
    with db.write() as session:
        backend.index(session, real)
        backend.index(session, zh)
    with db.read() as session:
        english = evaluate(backend, session, english_known_items(real, 200))
        chinese = evaluate(backend, session, chinese_known_items(zh, 200))
    assert english.queries == chinese.queries == 200
    # floors sit a little under what was measured (see docs/search.md); a regression in
    # segmentation, stemming or weighting drops well below them
    assert english.recall_at_10 >= 0.85, english.failures[:5]
    assert chinese.recall_at_10 >= 0.85, chinese.failures[:5]
    assert english.mrr >= 0.6
    assert chinese.mrr >= 0.45


# ------------------------------------------------------------------ failure classes (issue 11)
#
# A registry of three real cities' departments (bench/relevance: region names from cpca,
# government vocabulary), imported the way a portal is: CKAN files, `--suborgs`, then searched
# as an anonymous citizen through GET /api/v1/datasets. Tests the engine of today cannot pass
# are marked xfail(strict=True): when the query-plan engine lands they pass, strict turns that
# into a failure, and the marker is removed.

# The query-plan engine passes every case once marked here except this one: jieba keeps 财政预算
# as one word, and the fallback to its parts does not yet rank entries holding both parts first.
STILL_OPEN = pytest.mark.xfail(
    strict=True, reason="财政预算: entries with both parts are not all in the top 10 yet")
CITIES = ("天津市", "郑州市", "南京市")


@pytest.fixture(scope="module", params=[b for b in os.environ.get(
    "NDR_TEST_DB", "sqlite,postgres").split(",") if b.strip()])
def catalogue(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
              ) -> Iterator[tuple[object, list]]:  # type: ignore[type-arg]
    """The registry with the three cities imported; (harness, entries)."""
    from bench.relevance.catalogue import (
        chinese_catalogue,
        load_regions,
        root_org_id,
        root_org_name,
        write_ckan_files,
    )
    from registry.auth.principal import Principal
    from registry.importers.pipeline import run_import
    from registry.organizations.models import Role
    from tests.conftest import build_registry, create_postgres_database, drop_postgres_database

    tmp = tmp_path_factory.mktemp("relevance")
    drop = None
    if request.param.strip() == "sqlite":
        url = f"sqlite:///{tmp / 'registry.db'}"
    else:
        admin = request.getfixturevalue("postgres_admin_dsn")
        url, name = create_postgres_database(admin)
        drop = (admin, name)
    harness = build_registry(url, tmp / "var")
    try:
        regions = [r for r in load_regions() if r.name in CITIES]
        entries = chinese_catalogue(regions=regions)
        operator = Principal(id="test:operator", organization_id=None, role=Role.OPERATOR)
        for region in regions:
            harness.org(root_org_id(region), name_zh=root_org_name(region))
        for root, path in write_ckan_files(entries, tmp / "ckan").items():
            # Tianjin without sub-organisations: its departments are then only in the metadata
            summary = run_import(harness.state, path, root, "ckan", principal=operator,
                                 suborgs=root != "cn-120000")
            assert summary.rejected == []
        yield harness, entries
    finally:
        harness.state.stop()
        harness.state.db.dispose()
        if drop:
            drop_postgres_database(*drop)


def _search(harness: object, q: str, limit: int = 10) -> tuple[int, list[dict]]:  # type: ignore[type-arg]
    response = harness.client.get("/api/v1/datasets",  # type: ignore[attr-defined]
                                  query_string={"q": q, "limit": limit})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    return body["total"], body["items"]


def _titles(items: list[dict]) -> list[str]:  # type: ignore[type-arg]
    return [item["title"]["zh"] for item in items]


def _text(item: dict) -> str:  # type: ignore[type-arg]
    return " ".join([item["title"].get("zh", ""), (item.get("description") or {}).get("zh", ""),
                     *item.get("keywords", [])])


# ----- class 1: department names


@pytest.mark.parametrize("department", ["郑州市交通运输局", "南京市卫生健康委员会",
                                        "郑州市中级人民法院"])
def test_a_department_name_finds_that_departments_entries(catalogue, department: str) -> None:  # type: ignore[no-untyped-def]
    harness, entries = catalogue
    own = {e.title for e in entries if e.publisher == department}
    total, items = _search(harness, department)
    assert total >= len(own) >= 10
    assert set(_titles(items)) <= own, _titles(items)


def test_a_department_named_only_in_the_metadata_is_found(catalogue) -> None:  # type: ignore[no-untyped-def]
    """Tianjin was imported without --suborgs: its finance bureau is not an organisation of the
    registry, only dct:publisher in each entry; the name still finds them."""
    harness, entries = catalogue
    own = {e.title for e in entries if e.publisher == "天津市财政局"}
    total, items = _search(harness, "天津市财政局")
    assert total >= len(own) and set(_titles(items)) <= own, _titles(items)


def test_suborgs_do_not_collapse_chinese_departments_into_the_city(catalogue) -> None:  # type: ignore[no-untyped-def]
    from registry.importers.publishers import suborganization_id

    harness, _ = catalogue
    _, items = _search(harness, "南京市统计局")
    assert {item["organization"] for item in items} == {
        suborganization_id("cn-320100", "南京市统计局")}
    org = harness.client.get(f"/api/v1/organizations/{items[0]['organization']}").get_json()
    assert org["name_zh"] == "南京市统计局" and org["parent"] == "cn-320100"


# ----- class 2: the catalogue's own classification


@pytest.mark.parametrize(("label", "field"), [
    ("城市公交", "classification"),  # 资源分类 项: no title says it
    ("医疗卫生", "classification"),  # 资源分类 类
    ("出行服务", "theme"),            # 主题
    ("卫生和社会工作", "industry"),     # 所属行业
])
def test_a_classification_label_finds_the_entries_it_labels(catalogue, label: str,  # type: ignore[no-untyped-def]
                                                             field: str) -> None:
    harness, entries = catalogue
    labelled = {e.title for e in entries if label in e.labels}
    assert labelled and not any(label in e.title for e in entries)
    total, items = _search(harness, label)
    assert total >= min(len(labelled), 10)
    assert set(_titles(items)) <= labelled, _titles(items)


# ----- class 3: compound words whose parts match


@pytest.mark.parametrize(("query", "parts"), [
    pytest.param("财政预算", ["财政", "预算"], marks=STILL_OPEN),
    pytest.param("旅游景点", ["旅游", "景点"]),
    ("人口统计", ["人口", "统计"]),  # jieba already splits these two
    ("失信被执行人", ["失信", "执行"]),
    ("公交车", ["公交"]),
    ("地铁", ["地铁"]),
])
def test_a_compound_finds_entries_with_all_its_parts(catalogue, query: str,  # type: ignore[no-untyped-def]
                                                     parts: list[str]) -> None:
    harness, entries = catalogue
    having = [e for e in entries if all(p in e.text for p in parts)]
    assert having  # the catalogue holds the parts (not necessarily the whole word)
    total, items = _search(harness, query)
    assert total > 0, f"{query}: no result although {len(having)} entries have every part"
    best = items[: min(10, len(having))]
    assert all(all(p in _text(item) for p in parts) for item in best), _titles(best)


# ----- class 4: whole words above fragments


def test_a_whole_word_ranks_above_a_match_across_a_word_boundary(catalogue) -> None:  # type: ignore[no-untyped-def]
    """市政 is a word in 市政设施; in 天津市政府 it is 市 + 政府 and should come after."""
    harness, entries = catalogue
    whole = [e for e in entries if any(w in e.text for w in ("市政设施", "市政道路", "市政工程"))]
    fragment = [e for e in entries if "市政府" in e.text]
    assert len(whole) >= 10 and fragment
    total, items = _search(harness, "市政", limit=len(whole))
    assert total >= len(whole) + len(fragment)
    assert all("市政府" not in item["title"]["zh"] for item in items), _titles(items)


def test_mayor_is_not_found_inside_a_city_name(catalogue) -> None:  # type: ignore[no-untyped-def]
    """南京市长途客运站 is 南京市 + 长途客运站: no 市长 (mayor) in it; 市长信箱 first."""
    harness, _ = catalogue
    _, items = _search(harness, "市长")
    assert "市长信箱" in _titles(items)[0]
    first_fragment = next((i for i, t in enumerate(_titles(items)) if "长途" in t), len(items))
    last_whole = max(i for i, t in enumerate(_titles(items)) if "市长信箱" in t)
    assert last_whole < first_fragment, _titles(items)


# ----- class 5: repeated text is not over-rewarded


def test_matching_every_word_beats_repeating_one(catalogue) -> None:  # type: ignore[no-untyped-def]
    """公共停车场和路内停车场泊位 says 停车场 twice (its description often copies the title), but
    only 停车场收费标准 is about parking *fees*."""
    harness, entries = catalogue
    both = [e for e in entries if "停车场" in e.text and "收费" in e.text]
    total, items = _search(harness, "停车场 收费", limit=len(both))
    assert total >= len(both)
    assert all("停车场" in _text(i) and "收费" in _text(i) for i in items), _titles(items)


# ----- class 6: in English, the exact term before a prefix match


@pytest.fixture
def english(catalogue) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """Real US data.json titles that start with "regist" but are not the word register."""
    harness, _ = catalogue
    org = "us-fda-" + os.urandom(3).hex()
    harness.org(org, name_en="Food and Drug Administration")
    token = harness.token(org)
    titles = ["Death register", "Blood Establishment Registration Database",
              "Drug Establishments Current Registration Site",
              "Establishment Registration & Device Listing", "Intermediate Provider Registry",
              "Protected FSS Earth Station Registration (Complete Dataset)",
              "CMS Program Statistics - Medicare Deaths"]
    for title in titles:
        created = harness.client.post("/api/v1/datasets", headers=harness.auth(token), json={
            "metadata": {"title": {"en": title}, "description": {"en": f"{title}."}}})
        assert created.status_code == 201, created.get_json()
    yield harness


def test_the_exact_title_comes_first_for_death_register(english) -> None:  # type: ignore[no-untyped-def]
    _, items = _search(english, "death register")
    assert items and items[0]["title"]["en"] == "Death register", [i["title"] for i in items]


def test_register_prefers_the_word_to_words_that_start_with_it(english) -> None:  # type: ignore[no-untyped-def]
    _, items = _search(english, "register")
    assert items[0]["title"]["en"] == "Death register", [i["title"] for i in items]


# ----- class 7: a natural query is never left with nothing


@pytest.mark.parametrize("query", [
    pytest.param("郑州公交车线路查询"),
    pytest.param("南京市垃圾分类投放"),
    pytest.param("天津最低工资标准是多少"),
    "郑州市博物馆",
])
def test_a_natural_query_has_results(catalogue, query: str) -> None:  # type: ignore[no-untyped-def]
    harness, _ = catalogue
    total, items = _search(harness, query)
    assert total > 0 and items, query

