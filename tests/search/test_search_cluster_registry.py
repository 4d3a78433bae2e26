"""The whole registry on a search cluster: catalogue writes through the API land in the real
OpenSearch cluster via the outbox; an unreachable cluster never fails a write and /readyz says
how far behind the index is; an engine that refuses is reported, in its own words, by
`ndr search check` and /metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from search import feed
from search.elasticsearch_backend import alias_name, outbox_backlog
from tests.catalogue.helpers import metadata
from tests.support.opensearch_cluster import OutboxThread, use_cluster, wait_for


def test_api_writes_reach_the_cluster_and_are_found(cluster_registry) -> None:  # type: ignore[no-untyped-def]
    registry = cluster_registry
    registry.org("mot")
    editor = registry.auth(registry.token("mot"))
    assert registry.state.search.name == "elasticsearch"
    assert registry.state.search.flavour == "opensearch"
    with OutboxThread(registry):
        for i in range(3):
            r = registry.client.post("/api/v1/datasets", headers=editor, json={
                "slug": f"road-{i}", "metadata": metadata(keywords=[f"kw{i}", "交通"])})
            assert r.status_code == 201
        r = registry.client.patch("/api/v1/datasets/road-1", headers=editor,
                                  json={"metadata": {"keywords": ["changed"]}})
        assert r.status_code == 200

        def found() -> list[str]:
            alias = alias_name(registry.state.search.index_prefix)
            if not registry.state.search.client.alias_indices(alias):
                return []  # the worker has not created the index yet
            registry.state.search.client.refresh(alias)
            items = registry.client.get("/api/v1/datasets?q=changed").get_json()["items"]
            return [item["slug"] for item in items]

        assert wait_for(found) == ["road-1"]
    for q, want in (("kw0", ["road-0"]), ("kw1", []), ("kw2", ["road-2"])):
        items = registry.client.get(f"/api/v1/datasets?q={q}").get_json()["items"]
        assert [i["slug"] for i in items] == want, q
    everything = registry.client.get("/api/v1/datasets?q=交通").get_json()
    assert sorted(i["slug"] for i in everything["items"]) == ["road-0", "road-1", "road-2"]
    ready = registry.client.get("/readyz").get_json()
    assert ready["search_index"]["state"] == "current"
    assert ready["search_index"]["cluster"] in {"green", "yellow"}
    metrics = registry.client.get("/metrics").get_data(as_text=True)
    assert "ndr_search_outbox_rows 0" in metrics
    assert 'ndr_search_cluster_up{engine="opensearch"' in metrics


def test_unreachable_cluster_never_fails_a_write(  # type: ignore[no-untyped-def]
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import build_registry

    use_cluster(monkeypatch, "http://127.0.0.1:9,http://127.0.0.1:7")  # nothing listens
    registry = build_registry(database_url, tmp_path / "var")
    try:
        registry.org("mot")
        editor = registry.auth(registry.token("mot"))
        with OutboxThread(registry):
            for i in range(4):
                r = registry.client.post("/api/v1/datasets", headers=editor,
                                         json={"slug": f"kept-{i}", "metadata": metadata()})
                assert r.status_code == 201, r.get_json()
            wait_for(lambda: registry.state.search.outbox_status.last_error)
        with registry.state.db.read() as session:
            assert outbox_backlog(session, registry.state.search.consumer) == 4
        body = registry.client.get("/readyz").get_json()
        # the catalogue still serves: a lagging index is reported, not a readiness failure
        # (this harness runs no checkpoint loop, so readiness itself is not asserted here)
        assert not any("search" in name for name in body["checks"])
        assert body["search_index"]["state"] == "behind"
        assert body["search_index"]["behind_by"] == 4
        assert body["search_index"]["cluster"] == "unreachable"
        assert "Connection refused" in body["search_index"]["error"]
        metrics = registry.client.get("/metrics").get_data(as_text=True)
        assert "ndr_search_outbox_rows 4" in metrics
        assert 'status="unreachable"' in metrics and "ndr_search_cluster_nodes 0" in metrics
        assert "ndr_search_outbox_error{message=" in metrics and "Connection refused" in metrics

        from registry.cli import cli

        monkeypatch.setenv("NDR_VAR_DIR", str(tmp_path / "var"))
        monkeypatch.setenv("DATABASE_URL", database_url)
        result = CliRunner().invoke(cli, ["search", "check"])
        assert result.exit_code == 1
        report = json.loads(result.output)
        assert report["cluster"] == "unreachable" and report["outbox_rows"] == 4
        assert "Connection refused" in report["error"]
    finally:
        registry.state.stop()
        registry.state.db.dispose()


def test_engine_refusals_are_reported_by_check_and_metrics(  # type: ignore[no-untyped-def]
    cluster_registry, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk, as the engine reports it: the index gets a read-only-allow-delete block. The
    writes are kept, and the engine's message reaches `ndr search check` and /metrics."""
    registry = cluster_registry
    search = registry.state.search
    registry.org("mot")
    editor = registry.auth(registry.token("mot"))
    with OutboxThread(registry):
        wait_for(lambda: search.client.alias_indices(alias_name(search.index_prefix)))
    index = search.client.alias_indices(alias_name(search.index_prefix))[0]
    search.client.put_settings(index, {"index.blocks.read_only_allow_delete": True})
    try:
        with OutboxThread(registry):
            r = registry.client.post("/api/v1/datasets", headers=editor,
                                     json={"slug": "blocked", "metadata": metadata()})
            assert r.status_code == 201
            wait_for(lambda: search.outbox_status.last_error)
        assert "cluster_block_exception" in search.outbox_status.last_error
        metrics = registry.client.get("/metrics").get_data(as_text=True)
        assert "ndr_search_outbox_rows 1" in metrics
        assert "read_only_allow_delete" in metrics or "cluster_block_exception" in metrics

        from registry.cli import cli

        monkeypatch.setenv("NDR_VAR_DIR", str(tmp_path / "var"))
        monkeypatch.setenv("DATABASE_URL", database_url)
        result = CliRunner().invoke(cli, ["search", "check"])
        assert result.exit_code == 1, result.output
        report = json.loads(result.output)
        assert report["outbox_rows"] == 1 and report["missing"] == 1
        assert "cluster_block_exception" in report["refused"][0]["error"]
    finally:
        search.client.put_settings(index, {"index.blocks.read_only_allow_delete": None})
    # unblocked: the kept row goes in, and check is clean
    result = CliRunner().invoke(cli, ["search", "check"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["missing"], report["stale"], report["extra"], report["outbox_rows"]) == \
        (0, 0, 0, 0)
    with registry.state.db.read() as session:
        # the cluster's cursor is at the head; the rows stay until every consumer passed them
        assert outbox_backlog(session, search.consumer) == 0
        kept = session.execute(text("SELECT count(*) FROM search_outbox")).scalar_one()
    assert kept >= 1
    with registry.state.db.write() as session:
        assert feed.prune(session) == kept
        assert session.execute(text("SELECT count(*) FROM search_outbox")).scalar_one() == 0
