"""The query plan in OpenSearch / Elasticsearch terms: the request body, the index mapping
and the stored document — the same fields, tokens and boosts the Tantivy engine uses, so both
engines rank the same plan the same way.

Pure functions from `search.query_plan` values to JSON-able dicts; the cluster client lives in
the backend module (`search.elasticsearch_backend`), which calls `request_body` and
`document_source`. Text arrives pre-analysed (space-separated tokens from the plan), so the
cluster needs only the built-in ``whitespace`` analyzer — no Chinese plugin.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from search.documents import FACET_SOURCES, SearchDocument
from search.query_plan import (
    FALLBACK_PER_TERM,
    AllOf,
    AnyOf,
    Filter,
    Match,
    QueryPlan,
    Range,
    Terms,
    TextPlan,
    text_field_names,
)

_FILTER_FIELDS = {"state": "state", "visibility": "visibility",
                  "organization_id": "organization_id",
                  **{facet: f"f_{facet}" for facet in FACET_SOURCES}}


def index_mapping() -> dict[str, Any]:
    """Settings and mappings of an index holding `document_source` documents."""
    properties: dict[str, Any] = {
        "id": {"type": "keyword"}, "state": {"type": "keyword"},
        "visibility": {"type": "keyword"}, "organization_id": {"type": "keyword"},
        "modified": {"type": "long"}, "issued": {"type": "long"},
        "sort_modified": {"type": "keyword"}, "sort_title": {"type": "keyword"},
        "suggest": {"type": "keyword"}, "vocab": {"type": "keyword"},
        "version": {"type": "long"},
        "shown": {"type": "object", "enabled": False},
    }
    for name in text_field_names():
        properties[name] = {"type": "text", "analyzer": "whitespace", "norms": True,
                            "index_options": "freqs" if name.endswith("_w") else "positions",
                            "similarity": "BM25"}
    for facet in FACET_SOURCES:
        properties[f"f_{facet}"] = {"type": "keyword"}
    return {"settings": {"index": {"max_result_window": 10_001}},
            "mappings": {"dynamic": "strict", "properties": properties}}


def document_source(doc: SearchDocument) -> dict[str, Any]:
    """The stored cluster document: the fields of the Tantivy document, `shown` as an object."""
    from search.tantivy_engine import analyse

    fields = analyse(doc)
    fields["shown"] = json.loads(fields["shown"])
    for name in text_field_names():
        # Lucene's BM25 counts, for a term's rarity, the documents that have the field;
        # Tantivy counts every document. One placeholder token (which no query produces) in
        # an empty field makes the two the same, so a field few documents use (keywords)
        # weighs the same on both engines.
        if not fields.get(name):
            fields[name] = NO_TEXT
    return fields


NO_TEXT = "\u2400"  # SYMBOL FOR NULL: never a token of the analysis


def _match(match: Match) -> dict[str, Any]:
    if match.kind == "prefix":
        return {"prefix": {match.field: {"value": match.tokens[0], "boost": match.boost}}}
    if match.kind == "phrase" and len(match.tokens) > 1:
        return {"match_phrase": {match.field: {"query": " ".join(match.tokens),
                                               "boost": match.boost}}}
    return {"term": {match.field: {"value": match.tokens[0], "boost": match.boost}}}


def text_query(text: TextPlan, tie_breaker: float) -> dict[str, Any]:
    terms = [{"dis_max": {"queries": [_match(m) for m in t.matches],
                          "tie_breaker": tie_breaker}} for t in text.terms]
    if text.require_all:
        return {"bool": {"must": terms}}
    should: list[dict[str, Any]] = []
    for term in terms:
        should.append({"constant_score": {"filter": term, "boost": FALLBACK_PER_TERM}})
        should.append(term)
    return {"bool": {"should": should, "minimum_should_match": 1}}


def filter_query(node: Filter) -> dict[str, Any]:
    if isinstance(node, Terms):
        return {"terms": {_FILTER_FIELDS[node.field]: list(node.values)}}
    if isinstance(node, Range):
        bounds = {k: v for k, v in (("gte", node.gte), ("lte", node.lte)) if v is not None}
        return {"range": {node.field: bounds}}
    if isinstance(node, AllOf):
        return {"bool": {"filter": [filter_query(i) for i in node.items]}}
    assert isinstance(node, AnyOf)
    return {"bool": {"should": [filter_query(i) for i in node.items],
                     "minimum_should_match": 1}}


def _sort(plan: QueryPlan) -> list[dict[str, str]]:
    order = "desc" if plan.sort.descending else "asc"
    if plan.sort.key == "score":
        # equal scores: the dataset id, ascending (the order Tantivy gives documents added
        # in id order; it has no id tie-break of its own)
        return [{"_score": order}, {"id": "asc"}]
    return [{f"sort_{plan.sort.key}": order}]


def _search_after(plan: QueryPlan) -> list[Any] | None:
    """The cursor's last sort key in this mapping's terms (the composite sort keys)."""
    if plan.cursor is None:
        return None
    primary, dataset_id = plan.cursor.last
    if plan.sort.key == "score":
        return [primary, dataset_id]
    if plan.sort.key == "modified":
        return [f"{modified_stamp_of_key(str(primary)):014d}\x1f{dataset_id}"]
    return [f"{primary}\x1f{dataset_id}"]


def modified_stamp_of_key(key: str) -> int:
    digits = "".join(ch for ch in key if ch.isdigit())
    return int(digits[:14].ljust(14, "0")) if digits else 0


def request_body(plan: QueryPlan, text: TextPlan | None = None, *, use_fallback: bool = False
                 ) -> dict[str, Any]:
    """The _search body for ``plan`` (its main text, or its fallback when ``use_fallback``):
    hits (limit + 1, to know whether there is a next page), exact total, facet aggregations."""
    chosen = text if text is not None else (plan.fallback if use_fallback else plan.text)
    query: dict[str, Any] = {"bool": {"filter": [filter_query(plan.filter)]}}
    if chosen is not None:
        query["bool"]["must"] = [text_query(chosen, plan.tie_breaker)]
    body: dict[str, Any] = {
        "query": query,
        "sort": _sort(plan),
        "size": plan.limit + 1,
        "track_total_hits": True,
        "_source": ["id", "shown"],
    }
    after = _search_after(plan)
    if after is not None:
        body["search_after"] = after
    if plan.facets:
        body["aggs"] = {name: {"terms": {"field": f"f_{name}",
                                         "size": plan.facet_limit * 2 + 10}}
                        for name in plan.facets}
    return body


def facet_counts(aggregations: Mapping[str, Any], plan: QueryPlan
                 ) -> dict[str, list[tuple[str, int]]]:
    """Buckets ordered as every engine orders them: count descending, then value."""
    out: dict[str, list[tuple[str, int]]] = {}
    for name in plan.facets:
        buckets = [(str(b["key"]), int(b["doc_count"]))
                   for b in aggregations.get(name, {}).get("buckets", [])]
        buckets.sort(key=lambda b: (-b[1], b[0]))
        out[name] = buckets[: plan.facet_limit]
    return out


__all__ = ["document_source", "facet_counts", "filter_query", "index_mapping",
           "modified_stamp_of_key", "request_body", "text_query"]
