"""The search API over the default engine (Tantivy): bad input is a 400 naming the parameter,
never a 500 (finding F9), zero-result help, and autocomplete."""

from __future__ import annotations

import base64
import json

import pytest

from tests.catalogue.helpers import metadata


def b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


@pytest.fixture
def catalogue(registry):  # type: ignore[no-untyped-def]
    registry.org("mot", name_zh="杭州市交通运输局", name_en="Hangzhou Transport Bureau")
    editor = registry.auth(registry.token("mot"))
    entries = [
        ("bus", {"zh": "公交线路客流量统计", "en": "Bus ridership"}, ["交通运输", "公交"]),
        ("death", {"zh": "死亡登记", "en": "Death register"}, ["户籍"]),
        ("roads", {"zh": "城市道路养护", "en": "Road maintenance"}, ["交通运输"]),
    ]
    for slug, title, keywords in entries:
        r = registry.client.post("/api/v1/datasets", headers=editor, json={
            "slug": slug, "metadata": metadata(title=title, keywords=keywords)})
        assert r.status_code == 201, r.get_json()
    return registry


@pytest.mark.parametrize("cursor", [
    b64({"s": "-modified", "k": [None, None]}),  # F9: was a 500
    b64({"s": "-modified", "o": 20, "k": [None, None]}),
    b64({"s": "-modified", "o": -1, "k": ["2024", "x"]}),
    b64({"s": "-modified", "o": 10**9, "k": ["2024", "x"]}),
    b64({"s": "-modified", "o": True, "k": ["2024", "x"]}),
    b64({"s": "-modified", "o": 20, "k": [["nested"], "x"]}),
    b64({"s": "title", "o": 20, "k": ["a", "x"]}),  # another sort order
    b64([1, 2]), b64("text"), b64(None), "%%%", "a", "", "=" * 8, "x" * 5000,
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
])
def test_malformed_cursors_are_a_400_naming_cursor(catalogue, cursor: str) -> None:  # type: ignore[no-untyped-def]
    r = catalogue.client.get("/api/v1/datasets", query_string={"cursor": cursor,
                                                                "sort": "-modified"})
    if cursor == "":
        assert r.status_code == 200  # an empty cursor means the first page
        return
    assert r.status_code == 400, r.get_data(as_text=True)
    body = r.get_json()
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert [e["name"] for e in body["errors"]] == ["cursor"]


@pytest.mark.parametrize(("args", "name"), [
    ({"sort": "score"}, "sort"), ({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"),
    ({"facet": "secret"}, "facet"), ({"issued_from": "2024-13-01"}, "issued_from"),
    ({"bogus": "1"}, "bogus"), ({"facet_limit": "100000"}, "facet_limit"),
])
def test_bad_parameters_are_a_400_naming_them(catalogue, args: dict, name: str) -> None:  # type: ignore[no-untyped-def,type-arg]
    r = catalogue.client.get("/api/v1/datasets", query_string=args)
    assert r.status_code == 400
    assert name in [e.get("name") for e in r.get_json().get("errors", [])]


@pytest.mark.parametrize("q", ["x" * 1000, " ".join(f"w{i}" for i in range(100)), "交" * 1000,
                               "\x00", "\ufffe", "AND OR NOT", "title:*", "((((", "🙂" * 50])
def test_any_q_is_a_200(catalogue, q: str) -> None:  # type: ignore[no-untyped-def]
    r = catalogue.client.get("/api/v1/datasets", query_string={"q": q, "facet": "format"})
    assert r.status_code in (200, 400), r.get_data(as_text=True)
    if len(q) >= 500:
        assert r.get_json()["truncated"] is True


def test_cursor_pages_through_everything(catalogue) -> None:  # type: ignore[no-untyped-def]
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        args = {"limit": "1", "sort": "title", **({"cursor": cursor} if cursor else {})}
        page = catalogue.client.get("/api/v1/datasets", query_string=args).get_json()
        seen += [item["slug"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == ["bus", "death", "roads"] and len(seen) == 3


def test_department_name_and_zero_result_help(catalogue) -> None:  # type: ignore[no-untyped-def]
    found = catalogue.client.get("/api/v1/datasets?q=杭州市交通运输局").get_json()
    assert found["total"] == 3
    loose = catalogue.client.get("/api/v1/datasets?q=公交车").get_json()
    assert [i["slug"] for i in loose["items"]] == ["bus"]
    assert loose["loosened_query"] == "公交"
    assert catalogue.client.get(
        "/api/v1/datasets?q=death register").get_json()["items"][0]["slug"] == "death"


@pytest.mark.parametrize(("typed", "expected"), [
    ("公交", "公交线路客流量统计"), ("客流", "公交线路客流量统计"), ("jtys", "交通运输"),
    ("death r", "Death register"), ("REG", "Death register"), ("杭州", "杭州市交通运输局"),
])
def test_suggest_completes_titles_keywords_departments(catalogue, typed: str, expected: str  # type: ignore[no-untyped-def]
                                                       ) -> None:
    r = catalogue.client.get("/api/v1/suggest", query_string={"q": typed})
    assert r.status_code == 200
    texts = [s["text"] for s in r.get_json()["suggestions"]]
    assert expected in texts, texts


def test_suggest_only_offers_what_the_viewer_may_see(registry) -> None:  # type: ignore[no-untyped-def]
    registry.org("gov")
    editor = registry.auth(registry.token("gov"))
    r = registry.client.post("/api/v1/datasets", headers=editor, json={
        "slug": "secret", "visibility": "government",
        "metadata": metadata(title={"zh": "内部通讯录", "en": "Staff directory"})})
    assert r.status_code == 201, r.get_json()
    anonymous = registry.client.get("/api/v1/suggest?q=staff").get_json()
    assert anonymous["suggestions"] == []
    official = registry.client.get("/api/v1/suggest?q=staff", headers=editor).get_json()
    assert [s["text"] for s in official["suggestions"]] == ["Staff directory"]


@pytest.mark.parametrize("args", [{}, {"q": ""}, {"q": "a", "limit": "99"}, {"x": "1"}])
def test_suggest_bad_input_is_a_400(registry, args: dict) -> None:  # type: ignore[no-untyped-def,type-arg]
    r = registry.client.get("/api/v1/suggest", query_string=args)
    assert r.status_code == 400
    assert r.get_json()["errors"][0]["name"] in ("q", "limit", "x")


def test_results_page_shows_the_loosened_query_and_related_topics(catalogue) -> None:  # type: ignore[no-untyped-def]
    from tests.web.conftest import compile_translations

    compile_translations()
    page = catalogue.client.get("/datasets", query_string={"q": "公交车"},
                                headers={"Accept-Language": "zh"}).get_data(as_text=True)
    assert "以下结果包含其中部分词：公交" in page
    assert "线路客流量统计" in page  # the title (its 公交 highlighted)
    nothing = catalogue.client.get("/datasets", query_string={"q": "<script>zzqx"}
                                   ).get_data(as_text=True)
    assert "Related topics" in nothing or "相关主题" in nothing
    assert "<script>zzqx" not in nothing
