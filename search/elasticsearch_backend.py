"""Search-cluster backend (OpenSearch or Elasticsearch 8/9), a consumer of the change feed.

Why a feed: the catalogue commits to its database, and the cluster is another system. If the
registry wrote to both, a crash between the two writes would leave them silently different
(the index drift of GSA/data.gov#840). Instead ``index``/``remove`` only append rows to
``search_outbox`` *in the catalogue's transaction* (`search.feed.publish`: the plain search
document, the one format every consumer reads). ``drain_outbox`` ships the rows after the
cluster's own cursor (consumer ``cluster:<prefix>`` in ``search_feed_consumer``) and moves the
cursor only after the cluster acknowledged them; it never deletes rows, so each host's Tantivy
index can read the same feed at the same time (`search.feed.prune` removes rows every consumer
has passed). ``check`` compares the index with the database and ``repair`` fixes what differs.

Documents carry the query plan's pre-analysed fields (`search.opensearch_plan`: the fields the
Tantivy engine indexes, with a whitespace analyzer and no Chinese plugin), and ``search``
only translates the plan (`search.query_plan`), so ranking is decided in one place.

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
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from search import feed
from search.documents import Hit, SearchDocument, SearchQuery, SearchResults
from search.engine.clients import ClusterClient, connect, engine_message, item_message
from search.highlight import highlights_for
from search.opensearch_plan import document_source, facet_counts, index_mapping, request_body
from search.query_plan import QueryPlan, TextPlan, build_plan, encode_cursor
from search.tantivy_engine import closest_word

log = logging.getLogger(__name__)

CLUSTER_LAYOUT = 2  # 1: the token streams of search.analysis; 2: the query plan's fields


def alias_name(prefix: str) -> str:
    return f"{prefix}-datasets"


def index_template(prefix: str) -> dict[str, Any]:
    """The template for indices named ``<prefix>-datasets-*``: the query plan's mapping
    (`search.opensearch_plan.index_mapping`), one shard with a replica on another node (so
    one node can go away), and the layout it was built for in ``_meta``."""
    mapping = index_mapping()
    return {
        "index_patterns": [f"{prefix}-datasets-*"],
        "priority": 200,
        "template": {
            "settings": {"number_of_shards": 1, "number_of_replicas": 1,
                         "refresh_interval": "1s", **mapping["settings"]},
            "mappings": {**mapping["mappings"], "_meta": {"ndr_layout": CLUSTER_LAYOUT}},
        },
    }


def es_source(doc: SearchDocument) -> dict[str, Any]:
    """The stored cluster document: the query plan's fields, as the Tantivy engine indexes
    them (`search.opensearch_plan.document_source`)."""
    return document_source(doc)


# ---------------------------------------------------------------------------- outbox


def consumer_name(index_prefix: str) -> str:
    """The cluster's consumer of the change feed (its cursor and lease in
    ``search_feed_consumer``): one per index prefix, so two clusters (or two prefixes on one
    cluster) are fed independently, beside each host's Tantivy index."""
    return f"cluster:{index_prefix}"


def cluster_source(payload: str) -> dict[str, Any]:
    """The cluster document of an "index" row. Rows carry the plain search document every
    consumer reads (`search.feed.document_payload`); rows written by releases before the
    change feed carried a cluster document of the old layout (its token fields give it away):
    those are refused with a message saying to rebuild (`reindex`, which passes them)."""
    body = json.loads(payload)
    if not isinstance(body, dict):
        raise ValueError("the payload is not a JSON object")
    if "title_tokens" in body:
        raise ValueError("written by a release before the change feed (a cluster document of "
                         "layout 1); `ndr search reindex` rebuilds the index from the catalogue")
    return es_source(feed.decode_document(payload))


def _bulk_action(row: feed.FeedRow, index: str) -> dict[str, Any]:
    if row.op == "delete":
        return {"_op_type": "delete", "_index": index, "_id": row.dataset_id}
    return {
        "_op_type": "index", "_index": index, "_id": row.dataset_id,
        # external_gte: a replayed or late older version can never overwrite a newer one
        "version": row.version, "version_type": "external_gte",
        "_source": cluster_source(row.payload or ""),
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
    """``settled``: rows the cursor moved past; ``position``: the cursor afterwards;
    ``leased``: False when another process feeds this cluster (nothing was done here)."""

    settled: int = 0
    failures: list[OutboxFailure] = field(default_factory=list)
    position: int = 0
    leased: bool = True


def _is_write_session(session: Session) -> bool:
    """The registry binds write sessions with the execution option write=True."""
    try:
        return bool(session.get_bind().get_execution_options().get("write", False))
    except Exception:  # an unbound session: treat as a read
        return False


def _now_ms() -> int:
    return int(time.time() * 1000)


# Rows the engine answers 429 (overloaded, or an index blocked read-only) are retried within the
# call, after 0.5, 1 and 2 s. The helpers' own 2 s start made it 14 s, all that time before the
# refusal reached `outbox_status`, /metrics and /readyz; the worker loop retries the rows
# anyway on its next turn.
BULK_RETRIES = 3
BULK_RETRY_BACKOFF = 0.5


def drain_outbox(
    session_factory: Callable[[], Any], client: ClusterClient, *, index_prefix: str = "ndr",
    batch_size: int = 500, holder: str | None = None, lease_ttl: float = 30.0,
) -> DrainResult:
    """Ship the change-feed rows after this cluster's cursor (one batch); say how many were
    settled and which the engine refused (with its message).

    ``session_factory()`` must return a context manager yielding a write session (e.g.
    ``Database.write``). The cluster's consumer (`consumer_name`) is a lease as well as a
    cursor: only its holder ships, so several processes may run the loop. ``holder`` names a
    long-running feeder (it keeps the lease between calls); without one the call takes the
    lease for itself and hands it back (a one-shot drain, e.g. ``ndr search check``).

    Rows are never deleted here: other consumers (each host's Tantivy index) read the same
    rows, and `search.feed.prune` removes them once every consumer has passed them. The cursor
    is moved, in a transaction of its own after the bulk request, only over the leading rows
    the engine accepted (a version conflict means a newer version is already there, a missing
    document on delete means it is already gone: both count as accepted). A refused row stops
    the cursor there: it and the rows after it are shipped again on the next call (external
    versions and in-order replay make that harmless), so nothing acknowledged-to-be-needed is
    skipped. A crash after the engine acknowledged but before the cursor moved replays the same
    rows. Writes name the alias with ``require_alias``, so a missing alias is an error rather
    than a silently auto-created index with a guessed mapping. An unreachable cluster fails
    every row of the batch with the connection error (the cursor stays)."""
    alias = alias_name(index_prefix)
    consumer = consumer_name(index_prefix)
    one_shot = holder is None
    me = holder or f"drain:{uuid.uuid4().hex}"
    with session_factory() as session:
        if not feed.try_lease(session, consumer, me, _now_ms(), int(lease_ttl * 1000)):
            return DrainResult(position=feed.position_of(session, consumer), leased=False)
        position = feed.position_of(session, consumer)
        rows = feed.rows_after(session, position, batch_size)
    result = DrainResult(position=position)
    try:
        if not rows:
            return result
        actions: list[dict[str, Any]] = []
        unreadable: dict[int, str] = {}
        for row in rows:
            try:
                actions.append(_bulk_action(row, alias))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                # only corruption makes a row unreadable; it stops the cursor and is reported
                unreadable[row.id] = f"unreadable outbox payload: {exc}"
        outcomes = iter(client.streaming_bulk(
            iter(actions), require_alias=True, max_retries=BULK_RETRIES,
            initial_backoff=BULK_RETRY_BACKOFF)) if actions else iter(())
        accepted_through = position
        blocked = False
        for row in rows:
            message = unreadable.get(row.id)
            if message is None:
                ok, item = next(outcomes)
                outcome = next(iter(item.values()))
                status = outcome.get("status", 0)
                if ok or status == 409 or (row.op == "delete" and status == 404
                                           and "error" not in outcome):
                    if not blocked:
                        accepted_through = row.id
                        result.settled += 1
                    continue
                message = item_message(item)
            blocked = True
            result.failures.append(OutboxFailure(row.id, row.dataset_id, row.op, message))
            log.warning("outbox row %s (%s %s) not accepted: %s", row.id, row.op,
                        row.dataset_id, message)
        if accepted_through > position:
            with session_factory() as session:
                if feed.record_position(session, consumer, me, accepted_through, _now_ms()):
                    result.position = accepted_through
        return result
    finally:
        if one_shot:
            with session_factory() as session:
                feed.release_lease(session, consumer, me)


@dataclass
class OutboxStatus:
    """What the last drain attempt in this process met; read by /metrics and /readyz."""

    last_attempt: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    settled_total: int = 0
    failed_total: int = 0


DocumentSource = Callable[[Session], Iterable[SearchDocument]]


def new_holder() -> str:
    """A lease holder name: this host and process, and a nonce for this feeder."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def ensure_fed_index(session_factory: Callable[[], Any], client: ClusterClient, *,
                     index_prefix: str = "ndr", holder: str, lease_ttl: float = 30.0,
                     source: DocumentSource | None = None) -> bool:
    """Make sure the alias exists before feeding it; False while another process holds the
    cluster's lease (that one does it).

    A missing alias with a ``source`` (every current search document, from the catalogue) is
    filled by `reindex` and the cursor moved to the feed head read *before* the documents, in
    the same transaction: the feed may already have been pruned by the other consumers (a
    cluster added to a running registry), so replaying the feed from 0 would miss entries.
    Rows after that head are shipped by the drain (external versions keep them from going
    backwards). Without a source an empty index is created and the feed is replayed from
    the cursor."""
    consumer = consumer_name(index_prefix)
    with session_factory() as session:
        if not feed.try_lease(session, consumer, holder, _now_ms(), int(lease_ttl * 1000)):
            return False
    if client.alias_indices(alias_name(index_prefix)):
        client.put_template(f"{index_prefix}-datasets", index_template(index_prefix))
        return True
    if source is None:
        ensure_index(client, index_prefix=index_prefix)
        return True
    with session_factory() as session:
        position = feed.head(session)
        reindex(client, source(session), index_prefix=index_prefix)
        feed.advance(session, consumer, position, _now_ms())
    return True


def run_outbox_worker(
    session_factory: Callable[[], Any], client: ClusterClient, *, index_prefix: str = "ndr",
    interval: float = 1.0, stop: threading.Event | None = None,
    status: OutboxStatus | None = None, holder: str | None = None,
    source: DocumentSource | None = None,
) -> None:
    """Feed the cluster until ``stop`` is set: immediately again while there is work, else
    every ``interval`` seconds. Errors are recorded in ``status`` (the engine's message) and
    retried; the feed keeps the rows. The index and alias are created first if missing
    (`ensure_fed_index`). The lease is handed back on the way out."""
    stop = stop or threading.Event()
    status = status if status is not None else OutboxStatus()
    holder = holder or new_holder()
    ensured = False
    try:
        while not stop.is_set():
            status.last_attempt = time.time()
            drained = 0
            try:
                if not ensured:
                    ensured = ensure_fed_index(session_factory, client,
                                               index_prefix=index_prefix, holder=holder,
                                               source=source)
                if ensured:
                    result = drain_outbox(session_factory, client, index_prefix=index_prefix,
                                          holder=holder)
                    drained = result.settled
                    status.settled_total += result.settled
                    status.failed_total += len(result.failures)
                    if result.failures:
                        status.last_error = result.failures[0].message
                    elif result.leased:
                        status.last_error = None
                        status.last_success = time.time()
            except Exception as exc:  # the worker must survive an unreachable cluster
                status.last_error = engine_message(exc)
                log.warning("feeding the search cluster failed (%s); retrying",
                            status.last_error)
            if drained == 0 or status.last_error:
                stop.wait(interval)
    finally:
        try:
            with session_factory() as session:
                feed.release_lease(session, consumer_name(index_prefix), holder)
        except Exception:  # shutting down with the database gone: the lease just expires
            log.debug("could not hand back the search cluster lease", exc_info=True)


@dataclass
class OutboxLag:
    """How far the index is behind the catalogue."""

    rows: int
    oldest_seconds: float


def outbox_backlog(session: Session, consumer: str) -> int:
    """Feed rows after ``consumer``'s cursor, i.e. not yet in its index (export as a metric;
    it should hover near zero)."""
    return feed.backlog(session, consumer)


def outbox_lag(session: Session, consumer: str) -> OutboxLag:
    """Rows after ``consumer``'s cursor and the age of the oldest, in seconds (0 when it is
    current). Rows other consumers still need do not count."""
    position = feed.position_of(session, consumer)
    rows, oldest = session.execute(
        text("SELECT count(*), min(created_at) FROM search_outbox WHERE id > :p"),
        {"p": position}).one()
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


class ElasticsearchBackend:
    """The search-cluster backend. ``name`` is the backend kind the registry branches on;
    ``flavour`` says which engine (and so which client) is behind it."""

    name = "elasticsearch"
    updates_only_write = True  # a change-feed row; the drain sends it to the cluster

    def __init__(self, client: ClusterClient, *, index_prefix: str = "ndr") -> None:
        self.client = client
        self.index_prefix = index_prefix
        self.outbox_status = OutboxStatus()
        self.consumer = consumer_name(index_prefix)
        self.holder = new_holder()
        self._source: DocumentSource | None = None
        self._write_sessions: Callable[[], Any] | None = None
        # Feed the cluster up to the head before each search (as the Tantivy engine does in
        # its indexing process): what a single-process setup and the conformance suite need;
        # off for a registry, whose outbox worker feeds the cluster.
        self.read_your_writes = False

    def attach(self, write_sessions: Callable[[], Any], source: DocumentSource | None = None,
               read_sessions: Callable[[], Any] | None = None) -> None:
        """Register this cluster as a consumer of the change feed (so `search.feed.prune`
        keeps the rows it still needs) and remember where a new index is filled from
        (``source``: every current search document)."""
        self._source = source
        self._write_sessions = write_sessions
        try:
            with write_sessions() as session:
                feed.register(session, self.consumer, _now_ms())
        except SQLAlchemyError:  # not migrated yet (e.g. `ndr init`); the lease registers it
            log.debug("search cluster consumer not registered yet", exc_info=True)

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
        """Append to the change feed in the caller's transaction, in the format every
        consumer reads; searchable here after the next drain + refresh."""
        feed.publish(session, docs, [])

    def remove(self, session: Session, dataset_ids: Sequence[str]) -> None:
        feed.publish(session, [], dataset_ids)

    def count(self, session: Session) -> int:
        return self.client.count(alias_name(self.index_prefix))

    def search(self, session: Session, query: SearchQuery) -> SearchResults:
        """Translate the query plan (`search.query_plan`; ranking is decided there) with
        `search.opensearch_plan.request_body`. When every word is required and nothing
        matched, the plan's looser query is tried, as on Tantivy. Raises
        :class:`SearchUnavailable` (with the engine's message) when the cluster cannot
        answer: the caller turns it into a 503, never a 500."""
        plan = build_plan(query)
        if self.read_your_writes and self._write_sessions is not None \
                and not _is_write_session(session):
            # (inside a catalogue write its own rows are not committed: nothing to feed yet)
            behind = feed.position_of(session, self.consumer) < feed.head(session)
            if behind:
                self.wait_for_outbox(self._write_sessions)
        results = self._run(plan, None)
        if results.total or plan.text is None:
            return replace(results, truncated=plan.truncated)
        # Nothing matched every word: the same help as on Tantivy (issue 11, class 7) — the
        # looser query of finer words and its results, a spelling suggestion, related topics.
        loose = self._run(plan, plan.fallback) if plan.fallback else None
        found = loose if loose is not None and loose.total else None
        related = self._related(plan, found is not None)
        spelling = self._spelling(plan)
        return replace(found or results, truncated=plan.truncated,
                       loosened_query=" ".join(t.surface for t in plan.fallback.terms)
                       if found is not None and plan.fallback else None,
                       suggestion=spelling or (related[0] if related and found is None
                                               else None),
                       related=related)

    def _related(self, plan: QueryPlan, loosened: bool) -> list[str]:
        """The keywords and themes most common among the loosened results, else across
        everything the viewer may see."""
        body = request_body(replace(plan, facets=("keyword", "theme"), facet_limit=8),
                            plan.fallback if loosened else None)
        if not loosened:
            body["query"]["bool"].pop("must", None)
        body["size"] = 0
        body.pop("search_after", None)
        try:
            response = self.client.search(alias_name(self.index_prefix), body)
        except Exception as exc:
            raise SearchUnavailable(engine_message(exc)) from exc
        facets = facet_counts(response.get("aggregations", {}),
                              replace(plan, facets=("keyword", "theme"), facet_limit=8))
        seen: dict[str, int] = {}
        for name in ("keyword", "theme"):
            for value, count in facets.get(name, []):
                seen[value] = max(seen.get(value, 0), count)
        return [v for v, _ in sorted(seen.items(), key=lambda kv: (-kv[1], kv[0]))][:8]

    def _spelling(self, plan: QueryPlan) -> str | None:
        """Each English word of 4+ letters replaced by the closest vocabulary word (the
        candidates: vocabulary terms sharing its first two letters, from a terms
        aggregation; the choice: `search.tantivy_engine.closest_word`)."""
        if plan.text is None:
            return None
        words: list[str] = []
        changed = False
        for term in plan.text.terms:
            surface = term.surface
            if any("\u3400" <= ch <= "\u9fff" for ch in surface) or len(surface) < 4:
                words.append(surface)
                continue
            body = {"size": 0, "aggs": {"v": {"terms": {
                "field": "vocab", "size": 400,
                "include": f"{re.escape(surface[:2])}.*"}}}}
            try:
                response = self.client.search(alias_name(self.index_prefix), body)
            except Exception as exc:
                raise SearchUnavailable(engine_message(exc)) from exc
            candidates = [(str(b["key"]), int(b["doc_count"]))
                          for b in response["aggregations"]["v"]["buckets"]]
            best = closest_word(surface, candidates)
            changed = changed or bool(best and best != surface)
            words.append(best if best else surface)
        return " ".join(words) if changed else None

    def _run(self, plan: QueryPlan, text: TextPlan | None) -> SearchResults:
        body = request_body(plan, text)
        try:
            response = self.client.search(alias_name(self.index_prefix), body)
        except Exception as exc:
            raise SearchUnavailable(engine_message(exc)) from exc
        raw_hits = response["hits"]["hits"]
        more = len(raw_hits) > plan.limit
        raw_hits = raw_hits[: plan.limit]
        hits: list[Hit] = []
        last: tuple[str | float, str] | None = None
        for raw in raw_hits:
            shown = raw["_source"]["shown"]
            dataset_id = str(raw["_source"]["id"])
            score = float(raw.get("_score") or 0.0)
            hits.append(Hit(dataset_id=dataset_id, slug=shown["slug"], score=score,
                            highlights=highlights_for(shown, plan.highlight_terms)))
            primary = {"score": score, "modified": shown["modified_key"],
                       "title": shown["title_sort"]}[plan.sort.key]
            last = (primary, dataset_id)
        offset = plan.cursor.offset if plan.cursor else 0
        next_cursor = encode_cursor(plan.sort.name, offset + plan.limit, last) \
            if more and last is not None else None
        return SearchResults(total=int(response["hits"]["total"]["value"]), hits=hits,
                             facets=facet_counts(response.get("aggregations", {}), plan),
                             next_cursor=next_cursor)

    def run_outbox(self, session_factory: Callable[[], Any], *,
                   stop: threading.Event | None = None, interval: float = 1.0) -> None:
        """The outbox worker, recording what it meets in ``self.outbox_status``."""
        run_outbox_worker(session_factory, self.client, index_prefix=self.index_prefix,
                          interval=interval, stop=stop, status=self.outbox_status,
                          holder=self.holder, source=self._source)

    def wait_for_outbox(self, session_factory: Callable[[], Any], *, timeout: float = 30.0
                        ) -> None:
        """Feed until the cluster's cursor reaches the feed head, then refresh (tests and the
        CLI use this). Rows the engine refuses raise :class:`OutboxRefused` with its message;
        an unreachable cluster raises the client's connection error. While another process
        holds the lease, waits for that one to get there."""
        deadline = time.monotonic() + timeout
        while True:
            result = drain_outbox(session_factory, self.client, index_prefix=self.index_prefix,
                                  holder=self.holder)
            if result.failures:
                raise OutboxRefused(result.failures)
            if result.leased and not result.settled:
                break
            if not result.leased:
                with session_factory() as session:
                    if feed.backlog(session, self.consumer) == 0:
                        break
                time.sleep(0.05)
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
