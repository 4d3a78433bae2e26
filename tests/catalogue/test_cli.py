"""The `ndr` command line, run as a real subprocess against a real database directory."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "importers" / "data" / "datajson_bom.json"


def ndr(var: Path, database_url: str, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    env = {**os.environ, "NDR_VAR_DIR": str(var), "DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "registry.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False, timeout=120, **kwargs)


def test_init_org_token_import_and_log(database_url: str, tmp_path: Path) -> None:
    var = tmp_path / "var"
    first = ndr(var, database_url, "init")
    assert first.returncode == 0, first.stderr
    key_file = var / "log-signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "verifier key" in first.stdout
    assert ndr(var, database_url, "init").returncode == 0  # idempotent, keeps the key

    assert ndr(var, database_url, "org", "create", "fda", "--name-en",
               "Food and Drug Administration", "--kind", "agency").returncode == 0
    dup = ndr(var, database_url, "org", "create", "fda", "--name-en", "again")
    assert dup.returncode != 0 and "exists" in dup.stderr

    token = ndr(var, database_url, "token", "create", "--org", "fda", "--role", "editor")
    assert token.returncode == 0 and token.stdout.strip().startswith("ndr_")
    assert token.stdout.strip() not in key_file.read_text()

    imported = ndr(var, database_url, "import", str(SAMPLE), "--org", "fda", "--format",
                   "datajson")
    assert imported.returncode == 0, imported.stderr
    summary = json.loads(imported.stdout.strip().splitlines()[-1])
    assert summary["created"] >= 1 and summary["updated"] == 0
    again = ndr(var, database_url, "import", str(SAMPLE), "--org", "fda", "--format",
                "datajson")
    assert json.loads(again.stdout.strip().splitlines()[-1])["unchanged"] == summary["created"]

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"external_id": "x", "visibility": "public", "metadata": {"title": {}}}\n'
                   "not json\n")
    rejected = ndr(var, database_url, "import", str(bad), "--org", "fda", "--format", "jsonl")
    assert json.loads(rejected.stdout.strip().splitlines()[-1])["rejected"] == 2
    assert "rejected #1" in rejected.stderr and "rejected #2" in rejected.stderr

    checkpoint = ndr(var, database_url, "log", "checkpoint")
    assert checkpoint.stdout.splitlines()[1] == str(summary["created"])
    key = ndr(var, database_url, "log", "key").stdout.strip()
    assert key.startswith("registry.localhost/log+")


def test_flask_cli_has_the_same_commands(tmp_path: Path) -> None:
    env = {**os.environ, "NDR_VAR_DIR": str(tmp_path / "var")}
    out = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "init"], cwd=REPO,
                         env=env, capture_output=True, text=True, check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "var" / "log-signing.key").exists()
