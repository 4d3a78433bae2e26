"""The plan → OpenSearch translation: the shape of the request body for each part of a plan
(the cluster itself is exercised by the conformance suite once its fixture is added)."""

from __future__ import annotations

from datetime import date

from search import SearchQuery, Viewer
from search.opensearch_plan import (
    document_source,
    facet_counts,
    index_mapping,
    request_body,
)
from search.query_plan import FALLBACK_PER_TERM, build_plan, encode_cursor
from tests.search.test_search_backends import blank


def test_text_terms_become_a_must_of_dis_max_over_boosted_fields() -> None:
    plan = build_plan(SearchQuery(q="市政 register"))
    body = request_body(plan)
    must = body["query"]["bool"]["must"][0]["bool"]["must"]
    assert len(must) == 2
    first = must[0]["dis_max"]
    assert first["tie_breaker"] == plan.tie_breaker
    assert first["queries"][0] == {"term": {"title_w": {"value": "市政", "boost": 6.0}}}
    # a two-character word is a single bigram: a term on the fragment field
    assert {"term": {"title_g": {"value": "市政", "boost": 6.0 * 0.35}}} in first["queries"]
    longer = request_body(build_plan(SearchQuery(q="天津市政 ")))["query"]["bool"]["must"][0]
    queries = longer["bool"]["must"][0]["dis_max"]["queries"]
    assert {"match_phrase": {"title_g": {"query": "天津 津市 市政", "boost": 6.0 * 0.35}}
            } in queries
    last = must[1]["dis_max"]["queries"]
    assert {"prefix": {"title_w": {"value": "regist", "boost": 6.0 * 0.3}}} in last


def test_filters_hold_visibility_facets_and_ranges() -> None:
    plan = build_plan(SearchQuery(filters={"format": ["csv"], "theme": ["health"]},
                                  issued_to=date(2020, 12, 31),
                                  viewer=Viewer.government_user(["org-a"])))
    body = request_body(plan)
    assert "must" not in body["query"]["bool"]  # browsing: no text, everything filtered
    items = body["query"]["bool"]["filter"][0]["bool"]["filter"]
    visibility = items[0]["bool"]
    assert visibility["minimum_should_match"] == 1
    assert {"terms": {"state": ["published"]}} in visibility["should"]
    assert {"terms": {"f_format": ["CSV"]}} in items
    assert {"terms": {"f_theme": ["health"]}} in items
    assert {"range": {"issued": {"gte": 1, "lte": 20201231}}} in items
    assert body["sort"] == [{"sort_modified": "desc"}]


def test_anonymous_visibility_is_public_published_only() -> None:
    body = request_body(build_plan(SearchQuery(q="x")))
    visibility = body["query"]["bool"]["filter"][0]["bool"]["filter"][0]["bool"]["filter"]
    assert visibility == [{"terms": {"visibility": ["public"]}},
                          {"terms": {"state": ["published"]}}]


def test_fallback_counts_matching_terms_first() -> None:
    plan = build_plan(SearchQuery(q="财政预算"))
    assert plan.fallback is not None
    body = request_body(plan, use_fallback=True)
    should = body["query"]["bool"]["must"][0]["bool"]["should"]
    assert body["query"]["bool"]["must"][0]["bool"]["minimum_should_match"] == 1
    constant = [c for c in should if "constant_score" in c]
    assert len(constant) == len(plan.fallback.terms) == 2
    assert all(c["constant_score"]["boost"] == FALLBACK_PER_TERM for c in constant)


def test_cursor_becomes_search_after_in_composite_keys() -> None:
    cursor = encode_cursor("-modified", 20, ["2024-05-01T13:45:00", "ds-1"])
    plan = build_plan(SearchQuery(sort="-modified", cursor=cursor))
    body = request_body(plan)
    assert body["search_after"] == ["20240501134500\x1fds-1"]
    scored = build_plan(SearchQuery(q="x", cursor=encode_cursor("relevance", 20, [1.5, "d"])))
    assert request_body(scored)["search_after"] == [1.5, "d"]
    assert request_body(scored)["sort"] == [{"_score": "desc"}, {"id": "asc"}]


def test_facets_become_terms_aggregations_and_come_back_ordered() -> None:
    plan = build_plan(SearchQuery(facets=["format", "theme"], facet_limit=2))
    body = request_body(plan)
    assert body["aggs"]["format"] == {"terms": {"field": "f_format", "size": 14}}
    assert body["size"] == plan.limit + 1 and body["track_total_hits"] is True
    counts = facet_counts({"format": {"buckets": [
        {"key": "JSON", "doc_count": 3}, {"key": "CSV", "doc_count": 3},
        {"key": "PDF", "doc_count": 1}]}}, plan)
    assert counts == {"format": [("CSV", 3), ("JSON", 3)], "theme": []}


def test_mapping_covers_every_field_of_a_document() -> None:
    source = document_source(blank("d", title_zh="公交线路", title_en="Bus routes",
                                   formats=["csv"], keywords=["交通"]))
    properties = index_mapping()["mappings"]["properties"]
    assert set(source) <= set(properties)
    assert source["title_w"].split() == ["公交线路", "公交", "线路", "bus", "rout"]
    assert properties["title_g"]["analyzer"] == "whitespace"
