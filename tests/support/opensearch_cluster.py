"""The search cluster the tests run against: the project's own loopback OpenSearch cluster
(search/engine/, three nodes in one JVM, started once per test session), or an existing cluster
named by ``NDR_TEST_SEARCH_URL`` (with ``NDR_TEST_SEARCH_FLAVOUR=opensearch|elasticsearch``).

Why three nodes: with three cluster-manager-eligible nodes any one can be taken away and the
other two still form a quorum, so the fault tests may stop whichever node they like.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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


__all__ = ["ClusterError", "SearchCluster", "external_cluster", "start_cluster"]
