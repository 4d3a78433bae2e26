"""GET /api/v1/datasets: query arguments → a search query → hits hydrated from the database."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import Select, and_, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from registry.auth.principal import Principal
from registry.datasets.models import Dataset, DatasetVersion
from registry.datasets.policy import listed_version_number, viewer_for
from registry.http import int_arg
from registry.problems import FieldError, Problem, bad_request
from search import FACET_FIELDS, InvalidCursor, SearchQuery, SearchResults
from search.elasticsearch_backend import SearchUnavailable

FILTER_ARGS = tuple(FACET_FIELDS)
DATE_ARGS = ("issued_from", "issued_to", "modified_from", "modified_to")


def _date_arg(args: MultiDict[str, str], name: str) -> date | None:
    raw = args.get(name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise bad_request(f"{name} must be a date (YYYY-MM-DD)",
                          errors=[FieldError("must be a date (YYYY-MM-DD)", name=name)]) from None


def _int_arg(args: MultiDict[str, str], name: str, default: int, low: int, high: int) -> int:
    value = int_arg(name, default, minimum=low, maximum=high, args=args)
    assert value is not None
    return value


def query_from_args(args: MultiDict[str, str], principal: Principal | None) -> SearchQuery:
    known = {"q", "sort", "limit", "cursor", "facet", "facets", "include_withdrawn",
             "facet_limit", *FILTER_ARGS, *DATE_ARGS}
    unknown = sorted(set(args) - known)
    if unknown:
        raise bad_request("unknown query parameter(s): " + ", ".join(unknown),
                          errors=[FieldError("is not a known parameter", name=n)
                                  for n in unknown])
    facets: list[str] = []
    for raw in args.getlist("facet") + args.getlist("facets"):
        facets.extend(f.strip() for f in raw.split(",") if f.strip())
    bad = [f for f in facets if f not in FACET_FIELDS]
    if bad:
        raise bad_request("unknown facet(s): " + ", ".join(bad),
                          errors=[FieldError("must be one of " + ", ".join(FACET_FIELDS),
                                             name="facet")])
    sort = args.get("sort", "relevance" if args.get("q") else "-modified")
    if sort not in ("relevance", "modified", "-modified", "title"):
        raise bad_request("sort must be relevance, modified, -modified or title",
                          errors=[FieldError("must be relevance, modified, -modified or title",
                                             name="sort")])
    return SearchQuery(
        q=args.get("q", "")[:500],
        filters={name: args.getlist(name) for name in FILTER_ARGS if args.getlist(name)},
        issued_from=_date_arg(args, "issued_from"), issued_to=_date_arg(args, "issued_to"),
        modified_from=_date_arg(args, "modified_from"),
        modified_to=_date_arg(args, "modified_to"),
        sort=sort, limit=_int_arg(args, "limit", 20, 1, 100),
        cursor=args.get("cursor") or None, facets=tuple(dict.fromkeys(facets)),
        facet_limit=_int_arg(args, "facet_limit", 50, 1, 500),
        viewer=viewer_for(principal),
        include_withdrawn=args.get("include_withdrawn", "").lower() in ("1", "true", "yes"),
    )


def run_search(session: Session, backend: Any, query: SearchQuery) -> SearchResults:
    try:
        return backend.search(session, query)
    except InvalidCursor as exc:
        raise bad_request(f"cursor is not one this search issued ({exc})",
                          errors=[FieldError("is not a valid cursor for this search",
                                             name="cursor")]) from None
    except ValueError as exc:
        raise bad_request(str(exc), errors=[FieldError(str(exc), name=_culprit(str(exc)))]
                          ) from None
    except SearchUnavailable as exc:  # the search cluster is down or refusing: a 503, not a 500
        raise Problem(503, "Search is temporarily unavailable / 搜索暂时不可用",
                      f"the search cluster did not answer: {exc}", "search-unavailable",
                      headers={"Retry-After": "5"}) from None


def _culprit(message: str) -> str:
    """The request parameter a search ValueError is about (SearchQuery.validate's messages)."""
    for name in ("sort", "limit", "facet", "cursor"):
        if name in message:
            return name
    return "q"


def indexed_versions(session: Session, dataset_ids: list[str]
                     ) -> list[tuple[Dataset, DatasetVersion]]:
    """Each dataset with the version its search document holds (the released one, else the
    latest), in the order given: one query for a whole page of hits."""
    rows = session.execute(_with_indexed_version(select(Dataset, DatasetVersion), dataset_ids))
    found = {dataset.id: (dataset, version) for dataset, version in rows}
    return [found[i] for i in dataset_ids if i in found]


def _with_indexed_version(query: Select[Any], dataset_ids: list[str]) -> Select[Any]:
    """`query` over the datasets `dataset_ids`, each joined to the version its search
    document holds."""
    return (query.join(DatasetVersion, and_(DatasetVersion.dataset_id == Dataset.id,
                                            DatasetVersion.version == listed_version_number()))
            .where(Dataset.id.in_(dataset_ids)))


def hydrate(session: Session, results: SearchResults) -> list[dict[str, Any]]:
    """Summaries of the hit datasets, from the version the index holds for each. Reads the
    columns a summary shows, not whole rows: loading a page of entities was a third of a
    search's CPU."""
    scores = {hit.dataset_id: hit for hit in results.hits}
    if not scores:
        return []
    rows = session.connection().execute(_with_indexed_version(
        select(Dataset.id, Dataset.slug, Dataset.organization_id, DatasetVersion.version,
               DatasetVersion.state, DatasetVersion.visibility, DatasetVersion.metadata_json),
        list(scores)))
    found = {row.id: row for row in rows}
    items = []
    for dataset_id, hit in scores.items():
        row = found.get(dataset_id)
        if row is None:
            continue
        metadata = json.loads(row.metadata_json)
        items.append({
            "id": row.id, "slug": row.slug, "organization": row.organization_id,
            "version": row.version, "state": row.state,
            "visibility": row.visibility, "title": metadata.get("title"),
            "description": metadata.get("description"),
            "keywords": metadata.get("keywords", []),
            "formats": sorted({d["format"] for d in metadata.get("distributions", [])
                               if d.get("format")}),
            "modified": metadata.get("modified"), "score": hit.score,
            "highlights": hit.highlights,
        })
    return items


def search_datasets(session: Session, backend: Any, principal: Principal | None,
                    args: MultiDict[str, str]) -> dict[str, Any]:
    query = query_from_args(args, principal)
    results = run_search(session, backend, query)
    page: dict[str, Any] = {
        "total": results.total,
        "items": hydrate(session, results),
        "facets": {name: [{"value": v, "count": c} for v, c in values]
                   for name, values in results.facets.items()},
        "next_cursor": results.next_cursor,
    }
    if results.loosened_query is not None:
        page["loosened_query"] = results.loosened_query  # these hits match some of the words
    if results.suggestion is not None:
        page["suggestion"] = results.suggestion
    if results.related:
        page["related"] = results.related
    if results.truncated:
        page["truncated"] = True  # q was cut at the documented limit
    return page


SUGGEST_MAX_CHARS = 100


def suggest_entries(session: Session, backend: Any, principal: Principal | None,
                    args: MultiDict[str, str]) -> dict[str, Any]:
    """GET /api/v1/suggest?q=…: titles, keywords, departments and topics the viewer may see
    that start with (a word of) what was typed, Chinese, pinyin initials or English."""
    unknown = sorted(set(args) - {"q", "limit"})
    if unknown:
        raise bad_request("unknown query parameter(s): " + ", ".join(unknown),
                          errors=[FieldError("is not a known parameter", name=n)
                                  for n in unknown])
    q = args.get("q")
    if q is None or not q.strip():
        raise bad_request("q is required", errors=[FieldError("is required", name="q")])
    limit = _int_arg(args, "limit", 10, 1, 20)
    suggest = getattr(backend, "suggest", None)
    found = suggest(session, q[:SUGGEST_MAX_CHARS], viewer_for(principal), limit) \
        if suggest is not None else []
    return {"q": q[:SUGGEST_MAX_CHARS],
            "suggestions": [{"text": s.text, "kind": s.kind, "count": s.count} for s in found]}
