"""`ndr federation add|list|remove|status` against a real registry directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from anchoring.note import NoteSigner

MEMBER = "province-c.example.gov.cn/log"


def _ndr(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from registry.cli import main; "
                           "raise SystemExit(main())", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_trust_configuration_by_cli(database_url: str, tmp_path: Path) -> None:
    env = dict(os.environ, NDR_VAR_DIR=str(tmp_path / "var"), DATABASE_URL=database_url,
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    assert _ndr(env, "init").returncode == 0
    key = NoteSigner.generate(MEMBER).verifier_key
    added = _ndr(env, "federation", "add", MEMBER, key, "--url", "http://127.0.0.1:1",
                 "--mode", "poll")
    assert added.returncode == 0, added.stderr
    listed = [json.loads(line) for line in _ndr(env, "federation", "list").stdout.splitlines()]
    assert [(m["origin"], m["mode"], m["status"]) for m in listed] == [(MEMBER, "poll",
                                                                         "active")]
    bad = _ndr(env, "federation", "add", "x.example/log", "not-a-key")
    assert bad.returncode != 0 and "verifier_key" in bad.stderr
    other = _ndr(env, "federation", "add", MEMBER, NoteSigner.generate(MEMBER).verifier_key)
    assert other.returncode != 0 and "another key" in other.stderr
    status = _ndr(env, "federation", "status")
    assert "witness key:" in status.stdout and MEMBER in status.stdout
    assert oct(os.stat(tmp_path / "var" / "witness.key").st_mode & 0o777) == "0o600"
    polled = _ndr(env, "federation", "poll")
    assert polled.returncode == 0 and "error" in json.loads(polled.stdout)[MEMBER]
    assert _ndr(env, "federation", "remove", MEMBER).returncode == 0
    listed = [json.loads(line) for line in _ndr(env, "federation", "list").stdout.splitlines()]
    assert listed[0]["status"] == "removed"  # kept, marked
