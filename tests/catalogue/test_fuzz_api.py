"""schemathesis against /api/v1/openapi.json on a live server: no request may cause a 5xx.

Slow (a minute or two per database): `make test-slow`, which CI also runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_no_server_errors_under_fuzzing(database_url: str) -> None:
    args = [sys.executable, str(REPO / "bench" / "fuzz_api.py"), "--max-examples", "25"]
    if not database_url.startswith("sqlite"):
        args += ["--postgres", database_url]
    result = subprocess.run(args, cwd=REPO, capture_output=True, text=True, check=False,
                            timeout=850)
    summary = [line for line in result.stdout.splitlines() if line.startswith("schemathesis:")]
    assert summary, result.stdout[-3000:] + result.stderr[-3000:]
    assert " 0 with status 5xx" in summary[-1], result.stdout[-5000:]
    assert result.returncode == 0, result.stdout[-5000:]
