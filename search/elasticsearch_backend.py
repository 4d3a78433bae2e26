"""Elasticsearch backend, fed through a transactional outbox.

Why an outbox: the catalogue commits to its database, and Elasticsearch is another system. If
the registry wrote to both, a crash between the two writes would leave them silently different
(the index drift of GSA/data.gov#840). Instead ``index``/``remove`` only insert rows into
``search_outbox`` *in the catalogue's transaction*; ``drain_outbox`` ships committed rows to
Elasticsearch and deletes them only after Elasticsearch acknowledged them. ``check`` compares
the index with the database and ``repair`` fixes what differs.

Documents carry the *analysed* token streams of ``search.analysis`` and the index uses a
whitespace analyzer (``elasticsearch/index_template.json``), so Elasticsearch ranks the very
tokens SQLite and PostgreSQL rank, with no Chinese analysis plugin on the cluster.

Queries go to an alias (``<prefix>-datasets``); ``reindex`` builds a fresh index and swaps
the alias atomically, so searches never see a half-built index.

NOT exercised on the development machine (no Elasticsearch server can run there); the tests in
tests/search/test_search_elasticsearch.py run only when ELASTICSEARCH_URL is set.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from search.analysis import QueryTerm, query_terms
from search.documents import (
    FACET_SOURCES,
    Hit,
    SearchDocument,
    SearchQuery,
    SearchResults,
    decode_cursor,
    encode_cursor,
    facet_values,
    issued_key,
    modified_key,
    title_key,
)
from search.highlight import highlights_for
from search.sql_backend import SORT_KEYS, analyse_document, effective_sort, end_of_modified_range

log = logging.getLogger(__name__)

FIELD_BOOSTS = ("title_tokens^10", "keywords_tokens^5", "publisher_tokens^3",
                "description_tokens")


def alias_name(prefix: str) -> str:
    return f"{prefix}-datasets"


def index_template(prefix: str) -> dict[str, Any]:
    """The template shipped in the package, for indices named ``<prefix>-datasets-*``."""
    raw = resources.files("search").joinpath("elasticsearch/index_template.json").read_text()
    return json.loads(raw.replace("__PREFIX__", prefix))


def es_source(doc: SearchDocument) -> dict[str, Any]:
    """The stored Elasticsearch document: display text, token streams, facet keywords."""
    analysed = analyse_document(doc)
    source: dict[str, Any] = {
        "dataset_id": doc["dataset_id"], "slug": doc["slug"], "version": doc["version"],
        "state": doc["state"], "visibility": doc["visibility"],
        "organization_id": doc["organization_id"], "title_sort": title_key(doc),
        "modified_key": modified_key(doc.get("modified")) or "",
        "issued_key": issued_key(doc.get("issued")) or "",
        "title_zh": doc.get("title_zh"), "title_en": doc.get("title_en"),
        "description_zh": doc.get("description_zh"),
        "description_en": doc.get("description_en"),
        "title_tokens": analysed.title, "keywords_tokens": analysed.keywords,
        "publisher_tokens": analysed.publisher, "description_tokens": analysed.description,
    }
    for facet in FACET_SOURCES:
        source[facet] = []
    for facet, value in facet_values(doc):
        source[facet].append(value)
    return source


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()  # type: ignore[no-any-return]
    raise TypeError(f"not JSON serialisable: {type(value)!r}")


# ---------------------------------------------------------------------------- outbox


def enqueue(session: Session, op: str, dataset_id: str, version: int,
            payload: dict[str, Any] | None) -> None:
    session.execute(
        text("INSERT INTO search_outbox (dataset_id, op, version, payload) "
             "VALUES (:dataset_id, :op, :version, :payload)"),
        {"dataset_id": dataset_id, "op": op, "version": version,
         "payload": json.dumps(payload, default=_json_default) if payload else None},
    )


def _bulk_action(row: Any, index: str) -> dict[str, Any]:
    if row.op == "delete":
        return {"_op_type": "delete", "_index": index, "_id": row.dataset_id}
    return {
        "_op_type": "index", "_index": index, "_id": row.dataset_id,
        # external_gte: a replayed or late older version can never overwrite a newer one
        "version": row.version, "version_type": "external_gte",
        "_source": json.loads(row.payload),
    }


def drain_outbox(
    session_factory: Callable[[], Any], client: Any, *, index_prefix: str = "ndr",
    batch_size: int = 500,
) -> int:
    """Ship one batch of committed outbox rows to Elasticsearch; return how many were settled.

    ``session_factory()`` must return a context manager yielding a write session (e.g.
    ``Database.write``). Rows are deleted in the same transaction only when Elasticsearch
    accepted them (a version conflict means a newer version is already there, a missing
    document on delete means it is already gone: both count as settled). Anything else stays
    in the outbox and is retried on the next call. On PostgreSQL rows are claimed with
    ``FOR UPDATE SKIP LOCKED`` so several workers can share the work.
    """
    from elasticsearch import helpers

    alias = alias_name(index_prefix)
    with session_factory() as session:
        lock = " FOR UPDATE SKIP LOCKED" if session.bind.dialect.name != "sqlite" else ""
        rows = session.execute(
            text("SELECT id, dataset_id, op, version, payload FROM search_outbox "  # noqa: S608
                 f"ORDER BY id LIMIT :n{lock}"),
            {"n": batch_size},
        ).all()
        if not rows:
            return 0
        settled: list[int] = []
        results = helpers.streaming_bulk(
            client, (_bulk_action(r, alias) for r in rows), raise_on_error=False,
            raise_on_exception=False, max_retries=3, yield_ok=True,
        )
        for row, (ok, item) in zip(rows, results, strict=True):
            status = next(iter(item.values())).get("status", 0)
            if ok or status == 409 or (row.op == "delete" and status == 404):
                settled.append(row.id)
            else:
                log.warning("outbox row %s (%s %s) not accepted: %s", row.id, row.op,
                            row.dataset_id, item)
        for start in range(0, len(settled), 500):
            chunk = settled[start : start + 500]
            names = {f"i{n}": v for n, v in enumerate(chunk)}
            placeholders = ", ".join(f":{n}" for n in names)
            session.execute(
                text(f"DELETE FROM search_outbox WHERE id IN ({placeholders})"),  # noqa: S608
                names,
            )
        return len(settled)


def run_outbox_worker(
    session_factory: Callable[[], Any], client: Any, *, index_prefix: str = "ndr",
    interval: float = 1.0, stop: threading.Event | None = None,
) -> None:
    """Drain until ``stop`` is set: immediately again while there is work, else every
    ``interval`` seconds. Errors are logged and retried; the outbox keeps the rows."""
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            drained = drain_outbox(session_factory, client, index_prefix=index_prefix)
        except Exception:  # the worker must survive an unreachable cluster
            log.exception("draining the search outbox failed; retrying")
            drained = 0
        if drained == 0:
            stop.wait(interval)


def outbox_backlog(session: Session) -> int:
    """Rows not yet in Elasticsearch (export as a metric; it should hover near zero)."""
    return int(session.execute(text("SELECT count(*) FROM search_outbox")).scalar_one())


# ---------------------------------------------------------------------------- index admin


def ensure_index(client: Any, *, index_prefix: str = "ndr") -> str:
    """Install the template and, if the alias does not exist yet, a first index behind it."""
    client.indices.put_index_template(name=f"{index_prefix}-datasets",
                                      **index_template(index_prefix))
    alias = alias_name(index_prefix)
    if client.indices.exists_alias(name=alias):
        return alias
    name = _new_index_name(index_prefix)
    client.indices.create(index=name, aliases={alias: {}})
    return alias


def _new_index_name(prefix: str) -> str:
    return f"{prefix}-datasets-{datetime.now(UTC).strftime('%Y%m%d%H%M%S%f')}"


def reindex(client: Any, docs: Iterable[SearchDocument], *, index_prefix: str = "ndr") -> str:
    """Build a new index from ``docs`` (every current dataset version, from the database),
    then point the alias at it in one atomic alias update and delete the old indices.
    Returns the new index name. Outbox rows written meanwhile are applied by the next drain
    (external versions keep them from going backwards)."""
    from elasticsearch import helpers

    client.indices.put_index_template(name=f"{index_prefix}-datasets",
                                      **index_template(index_prefix))
    alias = alias_name(index_prefix)
    name = _new_index_name(index_prefix)
    client.indices.create(index=name, settings={"refresh_interval": "-1"})
    actions = ({"_op_type": "index", "_index": name, "_id": d["dataset_id"],
                "version": d["version"], "version_type": "external_gte",
                "_source": es_source(d)} for d in docs)
    helpers.bulk(client, actions, chunk_size=500)
    client.indices.put_settings(index=name, settings={"refresh_interval": "1s"})
    client.indices.refresh(index=name)
    old = list(client.indices.get_alias(name=alias).keys()) \
        if client.indices.exists_alias(name=alias) else []
    client.indices.update_aliases(actions=[
        *({"remove": {"index": o, "alias": alias}} for o in old),
        {"add": {"index": name, "alias": alias}},
    ])
    for o in old:
        client.indices.delete(index=o)
    return name


@dataclass
class DriftReport:
    missing: list[str] = field(default_factory=list)  # in the database, not in the index
    stale: list[str] = field(default_factory=list)  # indexed with another version
    extra: list[str] = field(default_factory=list)  # in the index, not in the database

    @property
    def clean(self) -> bool:
        return not (self.missing or self.stale or self.extra)


def check(client: Any, docs: Iterable[SearchDocument], *, index_prefix: str = "ndr"
          ) -> DriftReport:
    """Compare (dataset_id, version) of every database document with the index."""
    from elasticsearch import helpers

    indexed: dict[str, int] = {
        hit["_id"]: int(hit["_source"]["version"])
        for hit in helpers.scan(client, index=alias_name(index_prefix),
                                query={"query": {"match_all": {}}},
                                _source=["version"], size=1000)
    }
    report = DriftReport()
    for doc in docs:
        version = indexed.pop(doc["dataset_id"], None)
        if version is None:
            report.missing.append(doc["dataset_id"])
        elif version != doc["version"]:
            report.stale.append(doc["dataset_id"])
    report.extra = sorted(indexed)
    return report


def repair(client: Any, docs: Iterable[SearchDocument], report: DriftReport, *,
           index_prefix: str = "ndr") -> int:
    """Index the missing and stale documents (taken from ``docs``) and delete the extra ones;
    returns the number of operations. Stale documents are overwritten with ``force``-free
    plain indexing so a wrongly *newer* indexed version is corrected too."""
    from elasticsearch import helpers

    alias = alias_name(index_prefix)
    wanted = set(report.missing) | set(report.stale)
    actions: list[dict[str, Any]] = [
        {"_op_type": "index", "_index": alias, "_id": d["dataset_id"], "_source": es_source(d)}
        for d in docs if d["dataset_id"] in wanted
    ]
    actions += [{"_op_type": "delete", "_index": alias, "_id": i} for i in report.extra]
    if actions:
        helpers.bulk(client, actions, raise_on_error=False)
        client.indices.refresh(index=alias)
    return len(actions)


# ---------------------------------------------------------------------------- search


def _term_clause(term: QueryTerm) -> dict[str, Any]:
    return {"multi_match": {
        "query": " ".join(term.tokens),
        "type": "phrase_prefix" if term.prefix else "phrase",
        "fields": list(FIELD_BOOSTS),
    }}


def _visibility_filter(query: SearchQuery) -> dict[str, Any]:
    states = ["published", "withdrawn"] if query.include_withdrawn else ["published"]
    viewer = query.viewer
    if not viewer.government:
        return {"bool": {"filter": [{"term": {"visibility": "public"}},
                                    {"terms": {"state": states}}]}}
    should: list[dict[str, Any]] = [{"terms": {"state": states}}]
    if viewer.organization_ids:
        should.append({"bool": {"filter": [
            {"term": {"state": "draft"}},
            {"terms": {"organization_id": sorted(viewer.organization_ids)}}]}})
    return {"bool": {"should": should, "minimum_should_match": 1}}


def build_request(query: SearchQuery) -> tuple[dict[str, Any], list[QueryTerm], str]:
    """The search request body, the analysed terms (for highlighting) and the sort used."""
    terms = query_terms(query.q)
    filters: list[dict[str, Any]] = [_visibility_filter(query)]
    for facet in sorted(query.filters):
        values = [v.upper() if facet == "format" else v for v in query.filters[facet]]
        if values:
            filters.append({"terms": {facet: values}})
    issued: dict[str, str] = {}
    if query.issued_from:
        issued["gte"] = issued_key(query.issued_from) or ""
    if query.issued_to:
        issued["lte"] = issued_key(query.issued_to) or ""
        filters.append({"bool": {"must_not": {"term": {"issued_key": ""}}}})
    if issued:
        filters.append({"range": {"issued_key": issued}})
    modified: dict[str, str] = {}
    if query.modified_from:
        modified["gte"] = modified_key(query.modified_from) or ""
    if query.modified_to:
        modified["lte"] = end_of_modified_range(query.modified_to)
        filters.append({"bool": {"must_not": {"term": {"modified_key": ""}}}})
    if modified:
        filters.append({"range": {"modified_key": modified}})
    sort = effective_sort(query.sort, has_text=bool(terms))
    key_field, descending = SORT_KEYS[sort]
    primary = "_score" if key_field == "score" else key_field
    body: dict[str, Any] = {
        "query": {"bool": {"must": [_term_clause(t) for t in terms] or [{"match_all": {}}],
                           "filter": filters}},
        "sort": [{primary: "desc" if descending else "asc"}, {"dataset_id": "asc"}],
        "size": query.limit + 1,
        "track_total_hits": True,
        "_source": ["dataset_id", "slug", "title_zh", "title_en", "description_zh",
                    "description_en"],
        "aggs": {f: {"terms": {"field": f, "size": query.facet_limit}} for f in query.facets},
    }
    if query.cursor:
        body["search_after"] = decode_cursor(query.cursor, sort)
    return body, terms, sort


class ElasticsearchBackend:
    name = "elasticsearch"

    def __init__(self, client: Any, *, index_prefix: str = "ndr") -> None:
        self.client = client
        self.index_prefix = index_prefix

    @classmethod
    def connect(cls, url: str, *, index_prefix: str = "ndr") -> ElasticsearchBackend:
        from elasticsearch import Elasticsearch

        return cls(Elasticsearch(url, request_timeout=30), index_prefix=index_prefix)

    def index(self, session: Session, docs: Sequence[SearchDocument]) -> None:
        """Queue in the caller's transaction; searchable after the next drain + refresh."""
        for doc in docs:
            enqueue(session, "index", doc["dataset_id"], doc["version"], es_source(doc))

    def remove(self, session: Session, dataset_ids: Sequence[str]) -> None:
        for dataset_id in dataset_ids:
            enqueue(session, "delete", dataset_id, 0, None)

    def count(self, session: Session) -> int:
        return int(self.client.count(index=alias_name(self.index_prefix))["count"])

    def search(self, session: Session, query: SearchQuery) -> SearchResults:
        query.validate()
        body, terms, sort = build_request(query)
        response = self.client.search(index=alias_name(self.index_prefix), **body)
        raw_hits = response["hits"]["hits"]
        more = len(raw_hits) > query.limit
        raw_hits = raw_hits[: query.limit]
        hits = [Hit(dataset_id=h["_source"]["dataset_id"], slug=h["_source"]["slug"],
                    score=float(h.get("_score") or 0.0),
                    highlights=highlights_for(h["_source"], terms)) for h in raw_hits]
        facets = {
            f: [(b["key"], int(b["doc_count"])) for b in response["aggregations"][f]["buckets"]]
            for f in query.facets
        }
        next_cursor = encode_cursor(sort, raw_hits[-1]["sort"]) if more and raw_hits else None
        return SearchResults(total=int(response["hits"]["total"]["value"]), hits=hits,
                             facets=facets, next_cursor=next_cursor)

    def wait_for_outbox(self, session_factory: Callable[[], Any], *, timeout: float = 30.0
                        ) -> None:
        """Drain until the outbox is empty and refresh (tests and the CLI use this)."""
        deadline = time.monotonic() + timeout
        while drain_outbox(session_factory, self.client, index_prefix=self.index_prefix):
            if time.monotonic() > deadline:
                raise TimeoutError("search outbox did not drain in time")
        self.client.indices.refresh(index=alias_name(self.index_prefix))
