"""Fixtures: a real database (SQLite file or fresh PostgreSQL) with the search tables, and each
search engine over it.

Conformance: every test taking ``backend`` runs once per engine in ``ENGINES``. Adding an
engine (the OpenSearch cluster) is one entry: a name and a function building it over the test
database (return None, or skip, when the engine is not available here).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# pytest puts tests/ on sys.path (rootdir conftest, "prepend" import mode), and this directory
# is called "search": without the project root first, `import search` would find this folder as
# a namespace package instead of the real package. (Fix for the whole suite: pytest
# `pythonpath = ["."]` in pyproject.toml.)
_ROOT = str(Path(__file__).resolve().parents[2])
if sys.path[0] != _ROOT:
    sys.path.insert(0, _ROOT)

from registry.database import Database  # noqa: E402
from search import SearchBackend, backend_for_dialect, create_search_schema  # noqa: E402
from tests.conftest import RegistryHarness  # noqa: E402
from tests.support.opensearch_cluster import (  # noqa: E402
    ClusterError,
    SearchCluster,
    external_cluster,
    start_cluster,
    use_cluster,
)


def _tantivy(db: Database, tmp_path: Path) -> SearchBackend:
    from search.tantivy_engine import TantivyEngine

    engine = TantivyEngine(tmp_path / "tantivy-index", lease_ttl=5.0)
    engine.attach(db.write)
    return engine


def _database(db: Database, tmp_path: Path) -> SearchBackend:
    """The legacy in-database path (SQLite FTS5 / PostgreSQL tsvector)."""
    return backend_for_dialect(db.engine.dialect.name)


def _opensearch(db: Database, tmp_path: Path) -> SearchBackend:
    """The session's OpenSearch cluster, with an index prefix of its own, fed from the same
    change feed (its `wait_for_outbox` is what `load` calls after writing)."""
    import uuid

    from search.elasticsearch_backend import ElasticsearchBackend, ensure_index
    from search.engine.clients import connect
    from tests.support import opensearch_cluster

    request = opensearch_cluster.CURRENT_TEST.get("request")
    assert request is not None, "the autouse fixture _remember_request sets this"
    cluster: SearchCluster = request.getfixturevalue("search_cluster")
    client = connect(cluster.flavour, cluster.url)
    prefix = f"ndrconf{uuid.uuid4().hex[:8]}"
    ensure_index(client, index_prefix=prefix)

    class ConformanceCluster(ElasticsearchBackend):
        def release(self) -> None:
            for index in self.client.alias_indices(f"{prefix}-datasets"):
                self.client.delete_index(index)
            self.client.delete_template(f"{prefix}-datasets")
            self.client.close()

    backend = ConformanceCluster(client, index_prefix=prefix)
    backend.attach(db.write)
    backend.read_your_writes = True
    return backend


@pytest.fixture(autouse=True)
def _remember_request(request: pytest.FixtureRequest) -> Iterator[None]:
    """`_opensearch` starts the session's cluster only when a test asks for that engine.
    (Kept in a plain module: this conftest is imported twice, as pytest's and as
    ``tests.search.conftest``.)"""
    from tests.support import opensearch_cluster

    opensearch_cluster.CURRENT_TEST["request"] = request
    yield
    opensearch_cluster.CURRENT_TEST.pop("request", None)


ENGINES: dict[str, Callable[[Database, Path], SearchBackend]] = {
    "tantivy": _tantivy,
    "database": _database,
    "opensearch": _opensearch,
}
# Engines whose index is written in the catalogue transaction itself (a search inside that
# transaction sees its own uncommitted changes); fed engines see them after the commit.
IN_TRANSACTION = {"sqlite", "postgres"}


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    with database.engine.begin() as connection:
        create_search_schema(connection)
    yield database
    database.dispose()


@pytest.fixture(params=list(ENGINES))
def backend(request: pytest.FixtureRequest, db: Database, tmp_path: Path
            ) -> Iterator[SearchBackend]:
    engine = ENGINES[request.param](db, tmp_path)
    yield engine
    release = getattr(engine, "release", None)
    if release is not None:
        release()


@pytest.fixture
def database_backend(db: Database) -> SearchBackend:
    """The in-database engine of this test's database, to compare a cluster's answers with."""
    return backend_for_dialect(db.engine.dialect.name)


@pytest.fixture(scope="session")
def search_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchCluster]:
    """A real search cluster for the session: NDR_TEST_SEARCH_URL, else the project's own
    three-node OpenSearch on loopback (built with Maven on first use). Under CI a cluster that
    cannot start fails the run; elsewhere (no Java/Maven) the cluster tests skip, saying why."""
    external = external_cluster()
    if external is not None:
        yield external
        return
    try:
        cluster = start_cluster(tmp_path_factory.mktemp("opensearch"))
    except ClusterError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the OpenSearch cluster is required under CI: {exc}")
        pytest.skip(f"the OpenSearch cluster could not start: {exc}")
    try:
        yield cluster
    finally:
        assert cluster.launcher is not None
        cluster.launcher.stop()


@pytest.fixture
def cluster_registry(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                     search_cluster: SearchCluster) -> Iterator[RegistryHarness]:
    """The whole registry (API, outbox, /readyz, /metrics) on the search cluster, with an index
    prefix of its own; its indices are deleted afterwards."""
    from search.elasticsearch_backend import alias_name
    from tests.conftest import build_registry

    prefix = use_cluster(monkeypatch, search_cluster.url, search_cluster.flavour)
    registry = build_registry(database_url, tmp_path / "var")
    try:
        yield registry
    finally:
        registry.state.stop()
        client = registry.state.search.client
        for index in client.alias_indices(alias_name(prefix)):
            client.delete_index(index)
        registry.state.db.dispose()
