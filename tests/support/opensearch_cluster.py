"""The search cluster the tests run against: the project's own loopback OpenSearch cluster
(search/engine/, three nodes in one JVM, started once per test session), or an existing cluster
named by ``NDR_TEST_SEARCH_URL`` (with ``NDR_TEST_SEARCH_FLAVOUR=opensearch|elasticsearch``).

Why three nodes: with three cluster-manager-eligible nodes any one can be taken away and the
other two still form a quorum, so the fault tests may stop whichever node they like.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from search.engine.cluster import ClusterError, OpenSearchCluster


@dataclass
class SearchCluster:
    url: str  # every node, comma-separated
    flavour: str
    launcher: OpenSearchCluster | None  # None for an external cluster (no fault control)


def external_cluster() -> SearchCluster | None:
    url = os.environ.get("NDR_TEST_SEARCH_URL")
    if not url:
        return None
    return SearchCluster(url, os.environ.get("NDR_TEST_SEARCH_FLAVOUR", "opensearch"), None)


def start_cluster(data_dir: Path, nodes: int = 3) -> SearchCluster:
    """Start the loopback cluster; raises ClusterError with the launcher's reason."""
    launcher = OpenSearchCluster(data_dir, nodes=nodes)
    try:
        launcher.start()
    except ClusterError:
        launcher.kill()
        raise
    return SearchCluster(launcher.url, "opensearch", launcher)


T = TypeVar("T")

# The running test's fixture request (set by tests/search/conftest.py), so an engine factory
# there can ask for the session's cluster only when a test uses that engine.
CURRENT_TEST: dict[str, pytest.FixtureRequest] = {}


def wait_for(condition: Callable[[], T], deadline: float = 60.0) -> T:
    """Poll ``condition`` until it is truthy, failing after ``deadline`` seconds."""
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached before the deadline")


def use_cluster(monkeypatch: pytest.MonkeyPatch, url: str, flavour: str = "opensearch") -> str:
    """Point the registry's settings at a cluster, with an index prefix of its own."""
    prefix = f"ndrreg{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("NDR_SEARCH_BACKEND", flavour)
    monkeypatch.setenv("NDR_SEARCH_URL", url)
    monkeypatch.setenv("NDR_SEARCH_INDEX_PREFIX", prefix)
    return prefix


class OutboxThread:
    """The registry's own outbox worker (the loop `make run` starts), on a thread."""

    def __init__(self, registry: object, interval: float = 0.1) -> None:
        state = registry.state  # type: ignore[attr-defined]
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=state.search.run_outbox, args=(state.db.write,),
            kwargs={"stop": self.stop, "interval": interval}, name="test-outbox", daemon=True)

    def __enter__(self) -> OutboxThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


__all__ = ["ClusterError", "OutboxThread", "SearchCluster", "external_cluster", "start_cluster",
           "use_cluster", "wait_for"]
