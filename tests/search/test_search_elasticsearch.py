"""The search-cluster backend against a real cluster: the project's own three-node OpenSearch 2.19
on loopback (tests/search/conftest.py ``search_cluster``), or NDR_TEST_SEARCH_URL. The outbox
half runs everywhere (plain SQL in the catalogue database). Answers are checked against the
in-database backend given the same documents, and against the visibility rules restated here."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from bench.corpus import chinese_corpus
from registry.database import Database
from search import SearchBackend, SearchDocument, SearchQuery, Viewer, feed
from search.elasticsearch_backend import (
    ElasticsearchBackend,
    OutboxRefused,
    alias_name,
    check,
    consumer_name,
    drain_outbox,
    ensure_index,
    outbox_backlog,
    outbox_lag,
    reindex,
    repair,
)
from search.engine.clients import connect, engine_message
from tests.support.opensearch_cluster import SearchCluster


def doc(dataset_id: str, version: int = 1, **fields: object) -> SearchDocument:
    base = {
        "dataset_id": dataset_id, "slug": dataset_id, "version": version, "state": "published",
        "visibility": "public", "organization_id": "org", "organization_path": ["root", "org"],
        "publisher_names": ["交通运输部"], "title_zh": None, "title_en": None,
        "description_zh": None, "description_en": None, "keywords": [], "themes": [],
        "formats": ["csv"], "license": None, "sharing_type": None, "open_attribute": None,
        "update_cycle": None, "data_grade": None, "region": None, "issued": None,
        "modified": None,
    }
    base.update(fields)
    return base  # type: ignore[return-value]


class _Unreachable:
    """Stands in for a client only where no request may be made."""


def test_outbox_rows_commit_and_roll_back_with_the_catalogue_write(db: Database) -> None:
    backend = ElasticsearchBackend(_Unreachable())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError), db.write() as session:
        backend.index(session, [doc("a")])
        raise RuntimeError("abort")
    with db.read() as session:
        assert outbox_backlog(session, backend.consumer) == 0
    with db.write() as session:
        backend.index(session, [doc("a"), doc("b", title_zh="公交线路")])
        backend.remove(session, ["c"])
    with db.read() as session:
        rows = session.execute(text(
            "SELECT dataset_id, op, version FROM search_outbox ORDER BY id")).all()
        lag = outbox_lag(session, backend.consumer)
    assert [tuple(r) for r in rows] == [("a", "index", 1), ("b", "index", 1), ("c", "delete", 0)]
    assert lag.rows == 3 and 0 <= lag.oldest_seconds < 600


def test_drain_is_a_no_op_on_an_empty_outbox(db: Database) -> None:
    assert drain_outbox(db.write, _Unreachable()).settled == 0  # type: ignore[arg-type]


@pytest.fixture
def es_backend(search_cluster: SearchCluster) -> Iterator[ElasticsearchBackend]:
    prefix = f"ndrtest{uuid.uuid4().hex[:8]}"
    client = connect(search_cluster.flavour, search_cluster.url)
    ensure_index(client, index_prefix=prefix)
    yield ElasticsearchBackend(client, index_prefix=prefix)
    for index in client.alias_indices(alias_name(prefix)):
        client.delete_index(index)
    client.delete_template(f"{prefix}-datasets")
    client.close()


def test_the_cluster_has_several_nodes_and_finds_chinese_words_and_fragments(
    search_cluster: SearchCluster, es_backend: ElasticsearchBackend, db: Database
) -> None:
    health = es_backend.client.health()
    assert health["number_of_nodes"] >= 2 and health["status"] in {"green", "yellow"}
    # the index has a replica on another node, so one node can go away
    settings = es_backend.client.search(alias_name(es_backend.index_prefix),
                                        {"size": 0, "query": {"match_all": {}}})
    assert settings["_shards"]["total"] == 1
    client = es_backend.client
    with_zh = doc("zh", title_zh="北京市交通运输局公交线路")
    reindex(client, [with_zh], index_prefix=es_backend.index_prefix)
    # the plan's analysis (jieba words and CJK bigrams), pre-tokenised: no plugin needed
    with db.read() as session:
        for q in ("公交线路", "公交", "交线"):
            assert [h.dataset_id for h in es_backend.search(session, SearchQuery(q=q)).hits
                    ] == ["zh"], q
        assert es_backend.search(session, SearchQuery(q="地铁")).total == 0
        # nothing has every word: the plan's looser query (its single characters) answers
        assert es_backend.search(session, SearchQuery(q="铁路")).loosened_query == "铁 路"


def test_drained_documents_are_searchable_with_facets(
    db: Database, es_backend: ElasticsearchBackend
) -> None:
    with db.write() as session:
        es_backend.index(session, [
            doc("a", title_zh="北京市交通运输局公交线路", formats=["CSV"]),
            # (the default publisher 交通运输部 would match 交通 too)
            doc("b", title_en="Bus routes", formats=["JSON"], publisher_names=["DOT"]),
            doc("g", title_zh="交通", visibility="government"),
        ])
    es_backend.wait_for_outbox(db.write)
    with db.read() as session:
        assert outbox_backlog(session, es_backend.consumer) == 0
        result = es_backend.search(session, SearchQuery(q="交通", facets=["format"]))
        assert [h.dataset_id for h in result.hits] == ["a"]
        assert result.facets["format"] == [("CSV", 1)]
        assert es_backend.search(session, SearchQuery(
            q="交通", viewer=Viewer.government_user([]))).total == 2
        assert [h.dataset_id for h in es_backend.search(session, SearchQuery(q="rout")).hits] \
            == ["b"]
        assert es_backend.count(session) == 3


def test_outbox_applies_updates_and_deletes_in_order_and_never_goes_backwards(
    db: Database, es_backend: ElasticsearchBackend
) -> None:
    with db.write() as session:
        es_backend.index(session, [doc("a", version=1, title_en="first title")])
        es_backend.index(session, [doc("a", version=2, title_en="second title")])
        es_backend.index(session, [doc("d", title_en="doomed")])
        es_backend.remove(session, ["d", "never-indexed"])
    es_backend.wait_for_outbox(db.write)
    # a replayed, older version (a late worker) must not overwrite the newer one
    with db.write() as session:
        es_backend.index(session, [doc("a", version=1, title_en="first title")])
    es_backend.wait_for_outbox(db.write)
    with db.read() as session:
        assert outbox_backlog(session, es_backend.consumer) == 0
        assert [h.dataset_id for h in es_backend.search(session, SearchQuery(q="second")).hits] \
            == ["a"]
        assert es_backend.search(session, SearchQuery(q="first")).total == 0
        assert es_backend.search(session, SearchQuery(q="doomed")).total == 0
    report = check(es_backend.client, [doc("a", version=2)], index_prefix=es_backend.index_prefix)
    assert report.clean


def visible(d: SearchDocument, viewer: Viewer, include_withdrawn: bool = False) -> bool:
    """The visibility rules, restated from the specification."""
    states = {"published", "withdrawn"} if include_withdrawn else {"published"}
    if not viewer.government:
        return d["visibility"] == "public" and d["state"] in states
    if d["state"] == "draft":
        return d["organization_id"] in viewer.organization_ids
    return d["state"] in states


def test_visibility_rules_hold_on_the_cluster(
    db: Database, es_backend: ElasticsearchBackend
) -> None:
    docs = [doc(f"{state}-{vis}-{org}", title_en="harbour statistics", state=state,
                visibility=vis, organization_id=org)
            for state in ("published", "draft", "withdrawn")
            for vis in ("public", "government") for org in ("org-a", "org-b")]
    with db.write() as session:
        es_backend.index(session, docs)
    es_backend.wait_for_outbox(db.write)
    viewers = [Viewer.anonymous(), Viewer.government_user([]),
               Viewer.government_user(["org-a"]), Viewer.government_user(["org-a", "org-b"])]
    with db.read() as session:
        for viewer in viewers:
            for withdrawn in (False, True):
                got = es_backend.search(session, SearchQuery(
                    q="harbour", viewer=viewer, include_withdrawn=withdrawn, limit=50))
                want = sorted(d["dataset_id"] for d in docs if visible(d, viewer, withdrawn))
                assert sorted(h.dataset_id for h in got.hits) == want, (viewer, withdrawn)
                assert got.total == len(want)


def _load_both(db: Database, backend: SearchBackend, es_backend: ElasticsearchBackend,
               docs: list[SearchDocument]) -> None:
    with db.write() as session:
        backend.index(session, docs)
        es_backend.index(session, docs)
    es_backend.wait_for_outbox(db.write, timeout=120)


def test_cluster_answers_like_the_database_backend(
    db: Database, database_backend: SearchBackend, es_backend: ElasticsearchBackend
) -> None:
    """Same documents, same queries: the same hits, totals and facet counts as the in-database
    backend (ranking order may differ between engines, so hits are compared as sets)."""
    backend = database_backend
    docs = chinese_corpus(150)
    _load_both(db, backend, es_backend, docs)
    queries = [
        SearchQuery(q="交通", facets=["format", "theme"], limit=200),
        SearchQuery(q="统计", filters={"format": ["csv"]}, facets=["publisher"], limit=200),
        SearchQuery(q="", facets=["region", "license"], limit=200),
        SearchQuery(q="", sort="title", limit=200),
        SearchQuery(q="", sort="-modified", limit=200, viewer=Viewer.government_user([])),
    ]
    with db.read() as session:
        for query in queries:
            want = backend.search(session, query)
            got = es_backend.search(session, query)
            assert got.total == want.total, query
            assert {h.dataset_id for h in got.hits} == {h.dataset_id for h in want.hits}, query
            if query.sort != "relevance" or not query.q:
                assert [h.dataset_id for h in got.hits] == [h.dataset_id for h in want.hits]
            for facet in query.facets:
                assert sorted(got.facets[facet]) == sorted(want.facets[facet]), facet


def test_cursor_pages_cover_every_hit_once(
    db: Database, es_backend: ElasticsearchBackend
) -> None:
    docs = [doc(f"d{i:03}", title_en=f"water quality report {i}",
                modified=datetime(2024, 1, 1 + i % 28, tzinfo=UTC)) for i in range(57)]
    with db.write() as session:
        es_backend.index(session, docs)
    es_backend.wait_for_outbox(db.write)
    with db.read() as session:
        for sort in ("relevance", "title", "-modified", "modified"):
            seen: list[str] = []
            cursor: str | None = None
            while True:
                page = es_backend.search(session, SearchQuery(q="water", sort=sort, limit=10,
                                                              cursor=cursor))
                seen += [h.dataset_id for h in page.hits]
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert sorted(seen) == sorted(d["dataset_id"] for d in docs), sort
            assert len(seen) == len(set(seen)) == 57


def test_check_finds_drift_and_repair_fixes_it(es_backend: ElasticsearchBackend) -> None:
    client, prefix = es_backend.client, es_backend.index_prefix
    truth = [doc("same"), doc("stale", version=2), doc("missing")]
    reindex(client, [doc("same"), doc("stale", version=1), doc("extra")], index_prefix=prefix)
    report = check(client, truth, index_prefix=prefix)
    assert (report.missing, report.stale, report.extra) == (["missing"], ["stale"], ["extra"])
    assert repair(client, truth, report, index_prefix=prefix) == 3
    assert check(client, truth, index_prefix=prefix).clean


def test_reindex_swaps_the_alias(db: Database, es_backend: ElasticsearchBackend) -> None:
    client, prefix = es_backend.client, es_backend.index_prefix
    first = reindex(client, [doc("a", title_en="alpha")], index_prefix=prefix)
    second = reindex(client, [doc("b", title_en="beta")], index_prefix=prefix)
    assert client.alias_indices(f"{prefix}-datasets") == [second]
    assert not client.index_exists(first)
    with db.read() as session:
        assert [h.dataset_id for h in es_backend.search(session, SearchQuery(q="beta")).hits] \
            == ["b"]
        assert es_backend.search(session, SearchQuery(q="alpha")).total == 0


# ------------------------------------------------------------------ mistakes and refusals


def test_a_refused_document_stops_the_cursor_with_the_engines_message(
    db: Database, es_backend: ElasticsearchBackend
) -> None:
    """A keyword longer than the engine takes (Lucene's 32766-byte term limit): the row is not
    lost, the cursor stops just before it, and the engine's own reason is what the caller
    sees."""
    with db.write() as session:
        es_backend.index(session, [doc("good", title_en="fine")])
        es_backend.index(session, [doc("bad", keywords=["x" * 40_000])])
    with pytest.raises(OutboxRefused) as refused:
        es_backend.wait_for_outbox(db.write)
    assert "immense term" in str(refused.value)
    assert refused.value.failures[0].dataset_id == "bad"
    with db.read() as session:
        rows = session.execute(text("SELECT id, dataset_id FROM search_outbox ORDER BY id")
                               ).all()
        position = feed.position_of(session, es_backend.consumer)
        assert outbox_backlog(session, es_backend.consumer) == 1
    # the good one was settled (the cursor is past it), the bad one kept; nothing deleted
    assert [r[1] for r in rows] == ["good", "bad"] and position == rows[0][0]
    es_backend.client.refresh(alias_name(es_backend.index_prefix))
    with db.read() as session:
        assert [h.dataset_id for h in es_backend.search(session, SearchQuery(q="fine")).hits
                ] == ["good"]


def test_a_row_of_the_old_cluster_layout_is_refused_saying_to_rebuild(
    db: Database, es_backend: ElasticsearchBackend
) -> None:
    old = {"dataset_id": "old", "title_tokens": "old", "version": 1}
    with db.write() as session:
        session.execute(text("INSERT INTO search_outbox (dataset_id, op, version, payload) "
                             "VALUES ('old', 'index', 1, :p)"), {"p": json.dumps(old)})
    result = drain_outbox(db.write, es_backend.client, index_prefix=es_backend.index_prefix)
    assert result.settled == 0 and "ndr search reindex" in result.failures[0].message


def test_an_unreadable_payload_is_reported_and_kept(
    db: Database, es_backend: ElasticsearchBackend
) -> None:
    """A flipped byte in a payload: reported as unreadable, the cursor does not pass it."""
    with db.write() as session:
        es_backend.index(session, [doc("x", title_en="fine")])
        session.execute(text("UPDATE search_outbox SET payload = '{\"dataset_id\": \"x\"'"))
    result = drain_outbox(db.write, es_backend.client, index_prefix=es_backend.index_prefix)
    assert result.settled == 0 and "unreadable outbox payload" in result.failures[0].message
    with db.read() as session:
        assert outbox_backlog(session, es_backend.consumer) == 1


def test_writes_never_auto_create_an_index_when_the_alias_is_missing(
    db: Database, search_cluster: SearchCluster
) -> None:
    client = connect(search_cluster.flavour, search_cluster.url)
    prefix = f"ndrnoalias{uuid.uuid4().hex[:8]}"
    backend = ElasticsearchBackend(client, index_prefix=prefix)
    with db.write() as session:
        backend.index(session, [doc("a")])
    result = drain_outbox(db.write, client, index_prefix=prefix)
    assert result.settled == 0 and len(result.failures) == 1
    assert "require_alias" in result.failures[0].message or \
        "index_not_found" in result.failures[0].message
    assert not client.index_exists(alias_name(prefix))
    with db.read() as session:
        assert outbox_backlog(session, consumer_name(prefix)) == 1
    client.close()


def test_a_read_only_index_is_reported_not_swallowed(
    db: Database, es_backend: ElasticsearchBackend
) -> None:
    """What a full disk looks like to a writer: the engine puts a read-only-allow-delete block
    on the index (flood-stage watermark). The block is set here by hand, as the engine would."""
    alias = alias_name(es_backend.index_prefix)
    index = es_backend.client.alias_indices(alias)[0]
    es_backend.client.put_settings(index, {"index.blocks.read_only_allow_delete": True})
    try:
        with db.write() as session:
            es_backend.index(session, [doc("a")])
        with pytest.raises(OutboxRefused) as refused:
            es_backend.wait_for_outbox(db.write)
        assert "read_only_allow_delete" in str(refused.value) or \
            "cluster_block_exception" in str(refused.value)
        with db.read() as session:
            assert outbox_backlog(session, es_backend.consumer) == 1
    finally:
        es_backend.client.put_settings(index, {"index.blocks.read_only_allow_delete": None})
    es_backend.wait_for_outbox(db.write)
    with db.read() as session:
        assert outbox_backlog(session, es_backend.consumer) == 0


def test_an_unreachable_cluster_keeps_the_rows_and_says_why(db: Database) -> None:
    client = connect("opensearch", "http://127.0.0.1:9")  # discard port: nothing listens
    backend = ElasticsearchBackend(client, index_prefix="ndrgone")
    with db.write() as session:
        backend.index(session, [doc("a")])
    result = drain_outbox(db.write, client, index_prefix="ndrgone")
    assert result.settled == 0
    assert "Connection refused" in result.failures[0].message
    with db.read() as session:
        assert outbox_backlog(session, backend.consumer) == 1
    health = backend.cluster_health()
    assert health.status == "unreachable" and health.error


def test_the_elasticsearch_flavour_refuses_an_opensearch_server(
    search_cluster: SearchCluster
) -> None:
    """elasticsearch-py checks the product header and refuses OpenSearch; the message must say
    so (the operator then sets NDR_SEARCH_BACKEND=opensearch)."""
    from elasticsearch import UnsupportedProductError

    client = connect("elasticsearch", search_cluster.url)
    with pytest.raises(UnsupportedProductError) as refused:
        client.info()
    assert "not Elasticsearch" in engine_message(refused.value)


@pytest.mark.parametrize("url", ["", "ftp://127.0.0.1:9200", "127.0.0.1:9200", " , "])
def test_bad_cluster_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        connect("opensearch", url)


def test_unknown_flavour_is_refused() -> None:
    with pytest.raises(ValueError, match="flavour"):
        connect("solr", "http://127.0.0.1:9200")


# ------------------------------------------------------------------ one feed, two consumers


def test_one_database_feeds_tantivy_and_the_cluster_and_prune_waits_for_both(
    db: Database, es_backend: ElasticsearchBackend, tmp_path: Path
) -> None:
    """Issue 11: the outbox is a change feed with a cursor per index. A host's Tantivy index and
    the cluster read the same rows (written once, in the one plain format); neither deletes
    them; `feed.prune` removes a row only when both have applied it; both end with the same
    documents."""
    from search.tantivy_engine import TantivyEngine

    tantivy = TantivyEngine(tmp_path / "ix")
    tantivy.attach(db.write)
    es_backend.attach(db.write)
    try:
        docs = [doc(f"d{i}", title_en=f"harbour tides {i}", keywords=[f"k{i % 3}"])
                for i in range(12)]
        with db.write() as session:
            es_backend.index(session, docs)  # one write; any consumer's publish is the same
            es_backend.index(session, [doc("d3", version=2, title_en="harbour depth")])
            es_backend.remove(session, ["d5"])
        with db.read() as session:
            head = feed.head(session)
        assert head > 0

        # Tantivy applies everything; the cluster has applied nothing: nothing may go
        assert tantivy.index_step() == 14
        with db.write() as session:
            assert feed.prune(session) == 0
            assert feed.consumer_positions(session) == {tantivy.consumer: head,
                                                        es_backend.consumer: 0}
        es_backend.wait_for_outbox(db.write)
        with db.read() as session:
            assert feed.backlog(session, es_backend.consumer) == 0
        with db.write() as session:
            assert feed.prune(session) == 14
            assert feed.head(session) == 0  # (empty now)

        # the other way round: the cluster ahead, Tantivy behind
        with db.write() as session:
            es_backend.index(session, [doc("d7", version=2, title_en="harbour silt")])
            es_backend.remove(session, ["d8"])
        es_backend.wait_for_outbox(db.write)
        with db.write() as session:
            assert feed.prune(session) == 0  # Tantivy has not applied them yet
        assert tantivy.index_step() == 2
        # positions are recorded at most once a second while rows stream in, and at once
        # when the indexer finds nothing more to apply
        assert tantivy.index_step() == 0
        with db.write() as session:
            assert feed.prune(session) == 2
            assert session.execute(text("SELECT count(*) FROM search_outbox")).scalar_one() == 0

        indexed = {hit["_id"]: int(hit["_source"]["version"]) for hit in es_backend.client.scan(
            alias_name(es_backend.index_prefix), {"query": {"match_all": {}}}, ["version"])}
        want = {d["dataset_id"]: 1 for d in docs if d["dataset_id"] not in {"d5", "d8"}}
        want |= {"d3": 2, "d7": 2}
        assert tantivy.indexed_versions() == indexed == want
        with db.read() as session:
            for q in ("harbour", "tides", "depth", "silt"):
                query = SearchQuery(q=q, limit=50)
                on_cluster = es_backend.search(session, query)
                on_tantivy = tantivy.search(session, query)
                assert on_cluster.total == on_tantivy.total, q
                assert {h.dataset_id for h in on_cluster.hits} == \
                    {h.dataset_id for h in on_tantivy.hits}, q
    finally:
        tantivy.release()


def test_a_cluster_added_after_the_feed_was_pruned_starts_from_the_catalogue(
    db: Database, search_cluster: SearchCluster, tmp_path: Path
) -> None:
    """The migration case: Tantivy has applied and pruned the feed before the cluster exists.
    The cluster's first index is filled from the catalogue, its cursor set to the head read
    before the documents; later rows are shipped on top; nothing is missing."""
    from search.elasticsearch_backend import ensure_fed_index
    from search.tantivy_engine import TantivyEngine

    tantivy = TantivyEngine(tmp_path / "ix")
    tantivy.attach(db.write)
    catalogue = {d["dataset_id"]: d for d in
                 [doc(f"c{i}", title_en=f"canal locks {i}") for i in range(6)]}
    with db.write() as session:
        feed.publish(session, list(catalogue.values()), [])
    assert tantivy.index_step() == 6
    with db.write() as session:
        assert feed.prune(session) == 6  # only Tantivy is registered: the rows go

    client = connect(search_cluster.flavour, search_cluster.url)
    prefix = f"ndrlate{uuid.uuid4().hex[:8]}"
    backend = ElasticsearchBackend(client, index_prefix=prefix)
    try:
        backend.attach(db.write, lambda session: list(catalogue.values()))
        # the backend's own holder fills the index, as its outbox worker does; another holder
        # would keep the lease for its 30 s term and the drain below would wait that long
        assert ensure_fed_index(db.write, client, index_prefix=prefix, holder=backend.holder,
                                source=lambda session: list(catalogue.values()))
        with db.write() as session:
            updated = doc("c2", version=2, title_en="canal weirs")
            feed.publish(session, [updated], ["c4"])
        catalogue["c2"] = updated
        del catalogue["c4"]
        backend.wait_for_outbox(db.write)
        assert tantivy.index_step() == 2
        assert tantivy.index_step() == 0  # caught up: Tantivy records its position now
        truth = list(catalogue.values())
        assert check(client, truth, index_prefix=prefix).clean
        assert tantivy.indexed_versions() == {d["dataset_id"]: d["version"] for d in truth}
        with db.write() as session:
            assert feed.prune(session) == 2
    finally:
        tantivy.release()
        for index in client.alias_indices(alias_name(prefix)):
            client.delete_index(index)
        client.delete_template(f"{prefix}-datasets")
        client.close()
