"""Real gunicorn, two worker processes: whichever worker serves a search sees every entry
published before it (by either worker) — one worker holds the feed lease and indexes, the
other reloads after each commit or waits for it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.catalogue.helpers import metadata
from tests.catalogue.test_crash import _free_port, _wait_ready
from tests.conftest import build_registry

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_every_worker_finds_what_was_just_published(database_url: str, tmp_path: Path) -> None:
    var = tmp_path / "var"
    harness = build_registry(database_url, var)
    harness.org("mot")
    token = harness.token("mot")
    harness.state.stop()
    harness.state.search.release()
    harness.state.db.dispose()
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "NDR_VAR_DIR": str(var),
           "NDR_ANCHOR_INPROCESS": "0", "PYTHONPATH": str(REPO)}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--threads", "4", "--log-level", "warning", "app:create_app()"],
        cwd=REPO, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    try:
        _wait_ready(port)
        for i in range(12):
            word = f"fresh{i}word"
            body = json.dumps({"slug": f"e{i}", "metadata": metadata(
                title={"zh": f"公交线路{i}", "en": f"{word} routes"})}).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v1/datasets", data=body, method="POST",
                headers={"Authorization": f"Bearer {token}",
                         "Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 201
            url = f"http://127.0.0.1:{port}/api/v1/datasets?" + urllib.parse.urlencode(
                {"q": word})
            with urllib.request.urlopen(url, timeout=30) as response:
                found = json.loads(response.read())
            if [item["slug"] for item in found["items"]] != [f"e{i}"]:
                os.killpg(server.pid, signal.SIGTERM)
                raise AssertionError(f"{i}: {found}\n{server.communicate(timeout=30)[1]}")
        every = f"http://127.0.0.1:{port}/api/v1/datasets?" + urllib.parse.urlencode(
            {"q": "公交"})
        with urllib.request.urlopen(every, timeout=30) as response:
            assert json.loads(response.read())["total"] == 12
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
