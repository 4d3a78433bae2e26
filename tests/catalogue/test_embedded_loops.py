"""The embedded set-up runs its own loops: a write gets a checkpoint and an anchor by itself."""

from __future__ import annotations

import time

from tests.catalogue.helpers import metadata


def _wait_for(condition, deadline: float = 30.0):  # type: ignore[no-untyped-def]
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_background_checkpoints_and_anchors(database_url, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from registry.bootstrap import start_background
    from tests.conftest import build_registry

    monkeypatch.setenv("NDR_ANCHOR_BACKEND", "local")
    monkeypatch.setenv("NDR_ANCHOR_EPOCH_SECONDS", "0")
    monkeypatch.setenv("NDR_ANCHOR_JOURNAL_KEY_FILE", str(tmp_path / "journal.key"))
    registry = build_registry(database_url, tmp_path / "var")
    registry.state.settings.checkpoint_interval = 0.1
    start_background(registry.state)
    try:
        registry.org("mot")
        token = registry.token("mot")
        r = registry.client.post("/api/v1/datasets", headers=registry.auth(token),
                                 json={"slug": "auto", "metadata": metadata()})
        assert r.status_code == 201

        def anchored():  # type: ignore[no-untyped-def]
            items = registry.client.get("/api/v1/anchors").get_json()["items"]
            return [a for a in items if a["status"] == "final" and a["size"] >= 1]

        anchors = _wait_for(anchored)
        assert anchors[0]["backend"] == "local-journal"
        bundle = registry.client.get("/api/v1/datasets/auto/versions/1/proof").get_json()
        assert bundle["anchors"] and bundle["anchors"][0]["size"] >= 1
        ready = registry.client.get("/readyz")
        assert ready.status_code == 200, ready.get_json()
    finally:
        registry.state.stop()
        registry.state.db.dispose()
