"""Wall time of starting the loopback OpenSearch cluster: cold (empty Maven repository, so every
jar is downloaded from Maven Central and the launcher compiled) and warm (cache and build in
place), in one run. The cold run uses a copy of the launcher and a separate local repository
(``-Dmaven.repo.local``) so the real cache is left alone.

    python bench/opensearch_start_bench.py [--nodes 3] [--cold-repo /tmp/m2-cold]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from search.engine.cluster import LAUNCHER_DIR, OpenSearchCluster, build


def _timed_start(data: Path, nodes: int, project: Path, maven_args: list[str]) -> float:
    began = time.monotonic()
    cluster = OpenSearchCluster(data, nodes=nodes, project=project, maven_args=maven_args)
    cluster.start()
    took = time.monotonic() - began
    cluster.stop()
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--cold-repo", type=Path, default=Path("/tmp/m2-cold"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ndr-os-bench-") as tmp:
        root = Path(tmp)
        shutil.rmtree(args.cold_repo, ignore_errors=True)
        project = root / "launcher"
        shutil.copytree(LAUNCHER_DIR, project, ignore=shutil.ignore_patterns("target"))
        cold_args = [f"-Dmaven.repo.local={args.cold_repo}"]
        began = time.monotonic()
        build(project, maven_args=cold_args)
        cold_build = time.monotonic() - began
        cold_start = _timed_start(root / "cold", args.nodes, project, cold_args)
        build()  # the real launcher, built once with the real cache
        warm = [_timed_start(root / f"warm{i}", args.nodes, LAUNCHER_DIR, []) for i in range(2)]
    print(f"cluster of {args.nodes} nodes, OpenSearch launcher")
    print(f"  cold: build (download + compile) {cold_build:6.1f} s, then start "
          f"{cold_start:6.1f} s, total {cold_build + cold_start:6.1f} s")
    print("  warm: start " + ", ".join(f"{w:.1f} s" for w in warm)
          + f" (median {sorted(warm)[len(warm) // 2]:.1f} s)")


if __name__ == "__main__":
    main()
