"""Search-cluster backend (OpenSearch or Elasticsearch 8/9), fed through a transactional outbox.

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

One backend, two client flavours (``search.engine.clients``): the official ``opensearch-py``
client for OpenSearch and the official ``elasticsearch`` client for Elasticsearch 8/9, chosen by
``NDR_SEARCH_BACKEND=opensearch|elasticsearch``. Exercised against a real three-node OpenSearch
2.19 cluster on loopback (``search/engine/``, tests/search/test_search_elasticsearch.py and
tests/search/test_search_cluster_faults.py); no Elasticsearch server can run on the development
machine, so the Elasticsearch flavour is exercised only up to its refusal of a non-Elastic server.
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
from search.engine.clients import ClusterClient, connect, engine_message, item_message
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


@dataclass
class OutboxFailure:
    """An outbox row the engine refused, with the engine's own words."""

    row_id: int
    dataset_id: str
    op: str
    message: str


@dataclass
class DrainResult:
    settled: int = 0
    failures: list[OutboxFailure] = field(default_factory=list)


def drain_outbox(
    session_factory: Callable[[], Any], client: ClusterClient, *, index_prefix: str = "ndr",
    batch_size: int = 500,
) -> DrainResult:
    """Ship one batch of committed outbox rows to the cluster; say how many were settled and
    which the engine refused (with its message).

    ``session_factory()`` must return a context manager yielding a write session (e.g.
    ``Database.write``). Rows are deleted in the same transaction only when the engine
    accepted them (a version conflict means a newer version is already there, a missing
    document on delete means it is already gone: both count as settled). Anything else stays
    in the outbox and is retried on the next call. Writes name the alias with
    ``require_alias``, so a missing alias is an error rather than a silently auto-created index
    with a guessed mapping. On PostgreSQL rows are claimed with ``FOR UPDATE SKIP LOCKED`` so
    several workers can share the work. An unreachable cluster fails every row of the batch
    with the connection error (the rows stay).
    """
    alias = alias_name(index_prefix)
    result = DrainResult()
    with session_factory() as session:
        lock = " FOR UPDATE SKIP LOCKED" if session.bind.dialect.name != "sqlite" else ""
        rows = session.execute(
            text("SELECT id, dataset_id, op, version, payload FROM search_outbox "  # noqa: S608
                 f"ORDER BY id LIMIT :n{lock}"),
            {"n": batch_size},
        ).all()
        if not rows:
            return result
        settled: list[int] = []
        outcomes = client.streaming_bulk((_bulk_action(r, alias) for r in rows),
                                         require_alias=True, max_retries=3)
        for row, (ok, item) in zip(rows, outcomes, strict=True):
            status = next(iter(item.values())).get("status", 0)
            if ok or status == 409 or (row.op == "delete" and status == 404
                                       and "error" not in next(iter(item.values()))):
                settled.append(row.id)
            else:
                failure = OutboxFailure(row.id, row.dataset_id, row.op, item_message(item))
                result.failures.append(failure)
                log.warning("outbox row %s (%s %s) not accepted: %s", row.id, row.op,
                            row.dataset_id, failure.message)
        for start in range(0, len(settled), 500):
            chunk = settled[start : start + 500]
            names = {f"i{n}": v for n, v in enumerate(chunk)}
            placeholders = ", ".join(f":{n}" for n in names)
            session.execute(
                text(f"DELETE FROM search_outbox WHERE id IN ({placeholders})"),  # noqa: S608
                names,
            )
        result.settled = len(settled)
        return result


@dataclass
class OutboxStatus:
    """What the last drain attempt in this process met; read by /metrics and /readyz."""

    last_attempt: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    settled_total: int = 0
    failed_total: int = 0


def run_outbox_worker(
    session_factory: Callable[[], Any], client: ClusterClient, *, index_prefix: str = "ndr",
    interval: float = 1.0, stop: threading.Event | None = None,
    status: OutboxStatus | None = None,
) -> None:
    """Drain until ``stop`` is set: immediately again while there is work, else every
    ``interval`` seconds. Errors are recorded in ``status`` (the engine's message) and
    retried; the outbox keeps the rows. The index and alias are created first if missing."""
    stop = stop or threading.Event()
    status = status if status is not None else OutboxStatus()
    ensured = False
    while not stop.is_set():
        status.last_attempt = time.time()
        drained = 0
        try:
            if not ensured:
                ensure_index(client, index_prefix=index_prefix)
                ensured = True
            result = drain_outbox(session_factory, client, index_prefix=index_prefix)
            drained = result.settled
            status.settled_total += result.settled
            status.failed_total += len(result.failures)
            if result.failures:
                status.last_error = result.failures[0].message
            else:
                status.last_error = None
                status.last_success = time.time()
        except Exception as exc:  # the worker must survive an unreachable cluster
            status.last_error = engine_message(exc)
            log.warning("draining the search outbox failed (%s); retrying", status.last_error)
        if drained == 0 or status.last_error:
            stop.wait(interval)


@dataclass
class OutboxLag:
    """How far the index is behind the catalogue."""

    rows: int
    oldest_seconds: float


def outbox_backlog(session: Session) -> int:
    """Rows not yet in the index (export as a metric; it should hover near zero)."""
    return int(session.execute(text("SELECT count(*) FROM search_outbox")).scalar_one())


def outbox_lag(session: Session) -> OutboxLag:
    """Rows waiting and the age of the oldest, in seconds (0 when the outbox is empty)."""
    rows, oldest = session.execute(
        text("SELECT count(*), min(created_at) FROM search_outbox")).one()
    if not rows or oldest is None:
        return OutboxLag(0, 0.0)
    if isinstance(oldest, str):  # SQLite keeps ISO-8601 text
        oldest = datetime.fromisoformat(oldest.replace("Z", "+00:00"))
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return OutboxLag(int(rows), max(0.0, (datetime.now(UTC) - oldest).total_seconds()))


# ---------------------------------------------------------------------------- index admin


def ensure_index(client: ClusterClient, *, index_prefix: str = "ndr") -> str:
    """Install the template and, if the alias does not exist yet, a first index behind it."""
    client.put_template(f"{index_prefix}-datasets", index_template(index_prefix))
    alias = alias_name(index_prefix)
    if client.alias_indices(alias):
        return alias
    client.create_index(_new_index_name(index_prefix), aliases={alias: {}})
    return alias


def _new_index_name(prefix: str) -> str:
    return f"{prefix}-datasets-{datetime.now(UTC).strftime('%Y%m%d%H%M%S%f')}"


def reindex(client: ClusterClient, docs: Iterable[SearchDocument], *,
            index_prefix: str = "ndr") -> str:
    """Build a new index from ``docs`` (every current dataset version, from the database),
    then point the alias at it in one atomic alias update and delete the old indices.
    Returns the new index name. Outbox rows written meanwhile are applied by the next drain
    (external versions keep them from going backwards)."""
    client.put_template(f"{index_prefix}-datasets", index_template(index_prefix))
    alias = alias_name(index_prefix)
    name = _new_index_name(index_prefix)
    client.create_index(name, settings={"refresh_interval": "-1"})
    actions = ({"_op_type": "index", "_index": name, "_id": d["dataset_id"],
                "version": d["version"], "version_type": "external_gte",
                "_source": es_source(d)} for d in docs)
    _, errors = client.bulk(actions)
    if errors:
        client.delete_index(name)
        raise ReindexError(f"{len(errors)} documents refused while building {name}: "
                           f"{item_message(errors[0])}")
    client.put_settings(name, {"refresh_interval": "1s"})
    client.refresh(name)
    old = client.alias_indices(alias)
    client.update_aliases([
        *({"remove": {"index": o, "alias": alias}} for o in old),
        {"add": {"index": name, "alias": alias}},
    ])
    for o in old:
        client.delete_index(o)
    return name


class ReindexError(RuntimeError):
    """The engine refused documents of a rebuild; the alias still points at the old index."""


@dataclass
class DriftReport:
    missing: list[str] = field(default_factory=list)  # in the database, not in the index
    stale: list[str] = field(default_factory=list)  # indexed with another version
    extra: list[str] = field(default_factory=list)  # in the index, not in the database

    @property
    def clean(self) -> bool:
        return not (self.missing or self.stale or self.extra)


def check(client: ClusterClient, docs: Iterable[SearchDocument], *,
          index_prefix: str = "ndr") -> DriftReport:
    """Compare (dataset_id, version) of every database document with the index."""
    indexed: dict[str, int] = {
        hit["_id"]: int(hit["_source"]["version"])
        for hit in client.scan(alias_name(index_prefix), {"query": {"match_all": {}}},
                               ["version"])
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


def repair(client: ClusterClient, docs: Iterable[SearchDocument], report: DriftReport, *,
           index_prefix: str = "ndr") -> int:
    """Index the missing and stale documents (taken from ``docs``) and delete the extra ones;
    returns the number of operations. Stale documents are overwritten with ``force``-free
    plain indexing so a wrongly *newer* indexed version is corrected too. Raises
    :class:`ReindexError` with the engine's message if the engine refuses any of them."""
    alias = alias_name(index_prefix)
    wanted = set(report.missing) | set(report.stale)
    actions: list[dict[str, Any]] = [
        {"_op_type": "index", "_index": alias, "_id": d["dataset_id"], "_source": es_source(d)}
        for d in docs if d["dataset_id"] in wanted
    ]
    actions += [{"_op_type": "delete", "_index": alias, "_id": i} for i in report.extra]
    if actions:
        _, errors = client.bulk(actions)
        client.refresh(alias)
        refused = [e for e in errors if not _already_gone(e)]
        if refused:
            raise ReindexError(f"{len(refused)} repairs refused: {item_message(refused[0])}")
    return len(actions)


def _already_gone(item: dict[str, Any]) -> bool:
    result = item.get("delete")
    return isinstance(result, dict) and result.get("status") == 404 and "error" not in result


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
    """The search-cluster backend. ``name`` is the backend kind the registry branches on;
    ``flavour`` says which engine (and so which client) is behind it."""

    name = "elasticsearch"

    def __init__(self, client: ClusterClient, *, index_prefix: str = "ndr") -> None:
        self.client = client
        self.index_prefix = index_prefix
        self.outbox_status = OutboxStatus()

    @property
    def flavour(self) -> str:
        return str(getattr(self.client, "flavour", "unknown"))

    @classmethod
    def connect(cls, url: str, *, flavour: str = "opensearch", index_prefix: str = "ndr"
                ) -> ElasticsearchBackend:
        """``url``: one node URL or several, comma-separated (the client spreads requests
        over them and skips a dead one)."""
        return cls(connect(flavour, url), index_prefix=index_prefix)

    def index(self, session: Session, docs: Sequence[SearchDocument]) -> None:
        """Queue in the caller's transaction; searchable after the next drain + refresh."""
        for doc in docs:
            enqueue(session, "index", doc["dataset_id"], doc["version"], es_source(doc))

    def remove(self, session: Session, dataset_ids: Sequence[str]) -> None:
        for dataset_id in dataset_ids:
            enqueue(session, "delete", dataset_id, 0, None)

    def count(self, session: Session) -> int:
        return self.client.count(alias_name(self.index_prefix))

    def search(self, session: Session, query: SearchQuery) -> SearchResults:
        """Raises :class:`SearchUnavailable` (with the engine's message) when the cluster cannot
        answer: the caller turns it into a 503, never a 500."""
        query.validate()
        body, terms, sort = build_request(query)
        try:
            response = self.client.search(alias_name(self.index_prefix), body)
        except Exception as exc:
            raise SearchUnavailable(engine_message(exc)) from exc
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

    def run_outbox(self, session_factory: Callable[[], Any], *,
                   stop: threading.Event | None = None, interval: float = 1.0) -> None:
        """The outbox worker, recording what it meets in ``self.outbox_status``."""
        run_outbox_worker(session_factory, self.client, index_prefix=self.index_prefix,
                          interval=interval, stop=stop, status=self.outbox_status)

    def wait_for_outbox(self, session_factory: Callable[[], Any], *, timeout: float = 30.0
                        ) -> None:
        """Drain until the outbox is empty and refresh (tests and the CLI use this). Rows the
        engine refuses raise :class:`OutboxRefused` with its message; an unreachable cluster
        raises the client's connection error."""
        deadline = time.monotonic() + timeout
        while True:
            result = drain_outbox(session_factory, self.client, index_prefix=self.index_prefix)
            if result.failures:
                raise OutboxRefused(result.failures)
            if not result.settled:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("search outbox did not drain in time")
        self.client.refresh(alias_name(self.index_prefix))

    def cluster_health(self) -> ClusterHealth:
        """The cluster's health, or the reason it cannot be had (never raises)."""
        try:
            health = self.client.health(timeout=2.0)
        except Exception as exc:
            return ClusterHealth(status="unreachable", nodes=0, error=engine_message(exc))
        return ClusterHealth(status=str(health.get("status", "unknown")),
                             nodes=int(health.get("number_of_nodes", 0)), error=None)


@dataclass
class ClusterHealth:
    status: str  # green, yellow, red, or "unreachable"
    nodes: int
    error: str | None


class SearchUnavailable(RuntimeError):
    """The search cluster could not answer a query (unreachable, no index yet, an engine
    error); the message is the engine's."""


class OutboxRefused(RuntimeError):
    """The engine refused outbox rows; its messages are in ``failures``."""

    def __init__(self, failures: list[OutboxFailure]) -> None:
        self.failures = failures
        first = failures[0]
        super().__init__(f"{len(failures)} outbox rows refused by the search engine; first: "
                         f"{first.op} {first.dataset_id}: {first.message}")
