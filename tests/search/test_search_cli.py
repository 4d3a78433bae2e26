"""`ndr search check [--repair]` on the default engine, as an operator runs it: a real CLI
process beside the registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.catalogue.helpers import metadata
from tests.catalogue.test_search_sync import _break_tantivy_index

ROOT = Path(__file__).resolve().parents[2]


def ndr(registry, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    settings = registry.state.settings
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NDR_VAR_DIR": str(settings.var_dir),
           "DATABASE_URL": settings.database_url, "NDR_BACKGROUND": "0"}
    code = "import sys; from registry.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_check_finds_drift_and_repair_removes_it(registry) -> None:  # type: ignore[no-untyped-def]
    registry.org("mot")
    editor = registry.auth(registry.token("mot"))
    ids = [registry.client.post("/api/v1/datasets", headers=editor, json={
        "slug": f"s{i}", "metadata": metadata()}).get_json()["id"] for i in range(3)]
    registry.client.patch("/api/v1/datasets/s0", headers=editor,
                          json={"metadata": {"keywords": ["changed"]}})  # now version 2
    assert registry.client.get("/api/v1/datasets").get_json()["total"] == 3
    clean = ndr(registry, "search", "check")
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout.splitlines()[-1])["missing"] == 0
    _break_tantivy_index(registry.state, ids[0], ids[1])
    drift = ndr(registry, "search", "check")
    assert drift.returncode == 1
    assert json.loads(drift.stdout.splitlines()[-1]) == {
        "missing": 1, "stale": 1, "extra": 0, "repaired": False}
    repaired = ndr(registry, "search", "check", "--repair")
    assert repaired.returncode == 0, repaired.stderr
    after = ndr(registry, "search", "check")
    assert after.returncode == 0, after.stdout + after.stderr
