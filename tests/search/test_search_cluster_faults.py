"""Faults on the real three-node OpenSearch cluster, with the whole registry in front of it:

* one node taken away while the catalogue is written and searched (replicas keep search
  answering; every acknowledged write is in the index once the outbox drains);
* the whole cluster killed (SIGKILL of its JVM) mid-indexing and started again on its data
  (the outbox drains, drift check reports 0);
* reindex with alias swap while searches run (0 failed searches, no half-built index seen).

Each test prints its numbers (the closing note quotes them). They run on PostgreSQL, the
production database (its outbox claims rows with SKIP LOCKED). Slow: a minute or more each.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from bench.corpus import chinese_corpus
from registry.datasets import search_sync
from search import SearchQuery
from search.elasticsearch_backend import (
    ElasticsearchBackend,
    alias_name,
    check,
    ensure_index,
    outbox_backlog,
    reindex,
)
from search.engine.clients import OpenSearchClient, connect
from tests.catalogue.helpers import metadata
from tests.conftest import RegistryHarness
from tests.support.opensearch_cluster import OutboxThread, SearchCluster, wait_for

pytestmark = pytest.mark.slow
on_postgres = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def _launcher(search_cluster: SearchCluster):  # type: ignore[no-untyped-def]
    if search_cluster.launcher is None:
        pytest.skip("fault tests need the project's own cluster (NDR_TEST_SEARCH_URL is set)")
    return search_cluster.launcher


def _report(capsys: pytest.CaptureFixture[str], name: str, **numbers: object) -> None:
    with capsys.disabled():
        print(f"\n[fault] {name}: " + ", ".join(f"{k}={v}" for k, v in numbers.items()))


@dataclass
class Searcher:
    """Searches through the registry's API on a thread until stopped, counting failures."""

    registry: RegistryHarness
    query: str = "交通"
    ok: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        client = self.registry.app.test_client()
        while not self.stop.is_set():
            r = client.get(f"/api/v1/datasets?q={self.query}&limit=5")
            if r.status_code == 200:
                self.ok += 1
            else:
                self.failed += 1
                self.errors.append(f"{r.status_code} {r.get_data(as_text=True)[:200]}")
            self.stop.wait(0.05)

    def __enter__(self) -> Searcher:
        self.thread = threading.Thread(target=self.run, name="test-searcher", daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(60)


def _write(registry: RegistryHarness, editor: dict[str, str], slug: str) -> bool:
    r = registry.client.post("/api/v1/datasets", headers=editor, json={
        "slug": slug, "metadata": metadata(keywords=["交通", slug])})
    return r.status_code == 201


def _drained_and_counted(registry: RegistryHarness, deadline: float = 180.0) -> tuple[int, int]:
    """Wait for an empty outbox; return (documents in the index, drift count)."""
    state = registry.state

    def empty() -> bool:
        with state.db.read() as session:
            return outbox_backlog(session, state.search.consumer) == 0

    wait_for(empty, deadline)
    alias = alias_name(state.search.index_prefix)
    state.search.client.refresh(alias)
    with state.db.read() as session:
        report = check(state.search.client, search_sync.documents(session),
                       index_prefix=state.search.index_prefix)
    drift = len(report.missing) + len(report.stale) + len(report.extra)
    return state.search.client.count(alias), drift


def _wait_green(client: OpenSearchClient) -> None:
    """Replicas allocated and started: only then can a node go without taking data with it."""
    health = client.raw.cluster.health(params={"wait_for_status": "green", "timeout": "120s",
                                               "request_timeout": 130})
    assert health["status"] == "green", health


def _primary_node(client: OpenSearchClient, alias: str) -> int:
    index = client.alias_indices(alias)[0]
    shards = client.raw.cat.shards(index=index, format="json")
    primary = next(s for s in shards if s["prirep"] == "p")
    return int(str(primary["node"]).rsplit("-", 1)[1])


@on_postgres
def test_one_node_lost_while_indexing(
    cluster_registry: RegistryHarness, search_cluster: SearchCluster,
    capsys: pytest.CaptureFixture[str],
) -> None:
    launcher = _launcher(search_cluster)
    registry = cluster_registry
    registry.org("mot")
    editor = registry.auth(registry.token("mot"))
    search = registry.state.search
    acknowledged = 0
    with OutboxThread(registry):
        for i in range(30):
            acknowledged += _write(registry, editor, f"before-{i}")
        _drained_and_counted(registry)
        _wait_green(search.client)
        searcher = Searcher(registry).__enter__()
        victim = _primary_node(search.client, alias_name(search.index_prefix))
        status_without = launcher.stop_node(victim)  # the node holding the primary
        searches_before = searcher.ok + searcher.failed
        for i in range(30):
            acknowledged += _write(registry, editor, f"during-{i}")
        wait_for(lambda: searcher.ok + searcher.failed >= searches_before + 20)
        searches_while_down = searcher.ok + searcher.failed - searches_before
        launcher.start_node(victim)
        for i in range(30):
            acknowledged += _write(registry, editor, f"after-{i}")
        indexed, drift = _drained_and_counted(registry)
        searcher.__exit__()
    _report(capsys, "one node lost while indexing", stopped_node=f"node-{victim}",
            cluster_without_it=status_without, writes_acknowledged=acknowledged,
            docs_in_index_after_drain=indexed, drift=drift,
            searches=searcher.ok + searcher.failed, searches_while_down=searches_while_down,
            failed_searches=searcher.failed)
    assert acknowledged == 90
    assert indexed == acknowledged and drift == 0
    assert searcher.failed == 0, searcher.errors[:3]
    assert searches_while_down >= 20


@on_postgres
def test_whole_cluster_killed_mid_indexing_and_restarted(
    cluster_registry: RegistryHarness, search_cluster: SearchCluster,
    capsys: pytest.CaptureFixture[str],
) -> None:
    launcher = _launcher(search_cluster)
    registry = cluster_registry
    registry.org("mot")
    editor = registry.auth(registry.token("mot"))
    search = registry.state.search
    acknowledged = 0
    with OutboxThread(registry):
        wait_for(lambda: search.client.alias_indices(alias_name(search.index_prefix)))
        for i in range(30):
            acknowledged += _write(registry, editor, f"before-{i}")
        launcher.kill()  # SIGKILL: every node at once, mid-drain
        for i in range(30):
            acknowledged += _write(registry, editor, f"down-{i}")
        ready = registry.client.get("/readyz").get_json()["search_index"]
        behind_while_down = ready["behind_by"]
        launcher.start()  # the same data directory and ports
        restart_seconds = round(launcher.start_seconds, 1)
        for i in range(30):
            acknowledged += _write(registry, editor, f"after-{i}")
        indexed, drift = _drained_and_counted(registry)
    after = registry.client.get("/readyz").get_json()["search_index"]
    _report(capsys, "whole cluster killed and restarted", writes_acknowledged=acknowledged,
            behind_by_while_down=behind_while_down, restart_seconds=restart_seconds,
            docs_in_index_after_drain=indexed, drift_after=drift,
            readyz_after=after["state"])
    assert acknowledged == 90
    assert behind_while_down >= 30  # at least the writes made while it was down
    assert indexed == acknowledged and drift == 0
    assert after["state"] == "current" and after["behind_by"] == 0


def test_reindex_alias_swap_while_searching(
    search_cluster: SearchCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """Searches run on two threads while the index is rebuilt and the alias swapped five
    times: none may fail, and none may see a half-built index (the total is always all)."""
    prefix = "ndrswap"
    client = connect(search_cluster.flavour, search_cluster.url)
    backend = ElasticsearchBackend(client, index_prefix=prefix)
    docs = chinese_corpus(300)
    ensure_index(client, index_prefix=prefix)
    reindex(client, docs, index_prefix=prefix)
    # what an anonymous searcher sees of the whole corpus (public and published only)
    everything = sum(1 for d in docs if d["visibility"] == "public" and d["state"] == "published")
    assert backend.search(None, SearchQuery(q="", limit=5)).total == everything > 0  # type: ignore[arg-type]
    counts = {"ok": 0, "failed": 0, "partial": 0}
    errors: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def searching() -> None:
        while not stop.is_set():
            try:
                total = backend.search(None, SearchQuery(q="", limit=5)).total  # type: ignore[arg-type]
                key = "ok" if total == everything else "partial"
            except Exception as exc:  # counted, and the first few shown
                key = "failed"
                errors.append(repr(exc)[:200])
            with lock:
                counts[key] += 1

    threads = [threading.Thread(target=searching, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        swaps = 0
        for _ in range(5):
            reindex(client, docs, index_prefix=prefix)
            swaps += 1
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        for index in client.alias_indices(alias_name(prefix)):
            client.delete_index(index)
    _report(capsys, "reindex with alias swap while searching", swaps=swaps,
            searches=sum(counts.values()), failed_searches=counts["failed"],
            searches_seeing_a_partial_index=counts["partial"])
    assert counts["failed"] == 0, errors[:3]
    assert counts["partial"] == 0
    assert counts["ok"] >= 20


@pytest.fixture(autouse=True)
def _cluster_back_up(search_cluster: SearchCluster) -> Iterator[None]:
    """Whatever a fault test did, the session's cluster is whole again afterwards."""
    yield
    launcher = search_cluster.launcher
    if launcher is None:
        return
    if not launcher.running:
        launcher.start()
    for node in launcher.node_info:
        if not node.running:
            launcher.start_node(int(node.name.rsplit("-", 1)[1]))
