"""Real gunicorn, two worker processes. With NDR_SEARCH_MAX_LAG_MS=0, whichever worker serves a
search sees every entry published before it (by either worker): one worker holds the feed lease
and indexes, the other reloads after each commit or waits for it. With the default lag (1 s) the
worker that does not index may answer without the last second's changes; every search then
finds the entry once that has passed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.catalogue.helpers import metadata
from tests.catalogue.test_crash import _free_port, _wait_for, _wait_ready
from tests.conftest import build_registry

REPO = Path(__file__).resolve().parents[2]
DEFAULT_LAG_S = 1.0  # NDR_SEARCH_MAX_LAG_MS unset


@pytest.mark.slow
@pytest.mark.parametrize("max_lag_ms", ["0", "default"])
def test_every_worker_finds_what_was_just_published(database_url: str, tmp_path: Path,
                                                    max_lag_ms: str) -> None:
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
    env.pop("NDR_SEARCH_MAX_LAG_MS", None)
    if max_lag_ms != "default":
        env["NDR_SEARCH_MAX_LAG_MS"] = max_lag_ms
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--threads", "4", "--log-level", "warning", "app:create_app()"],
        cwd=REPO, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    try:
        _wait_ready(port)
        # Cold start: a worker loads jieba and pinyin tables before its first indexing (seconds
        # on a loaded machine). Wait for the index to answer once, then hold it to freshness.
        publish(port, token, "warm", "预热条目")
        warm = f"http://127.0.0.1:{port}/api/v1/datasets?" + urllib.parse.urlencode(
            {"q": "预热"})
        for _ in range(6):  # several times, so that both workers have warmed up
            _wait_for(lambda: _total(warm) == 1, 120)
        for i in range(12):
            word = f"fresh{i}word"
            publish(port, token, f"e{i}", f"公交线路{i}", f"{word} routes")
            url = f"http://127.0.0.1:{port}/api/v1/datasets?" + urllib.parse.urlencode(
                {"q": word})
            if max_lag_ms == "default":
                # either worker may answer; each must have it once the lag has passed
                for _ in range(4):
                    _wait_for(lambda i=i, url=url: _slugs(url) == [f"e{i}"], 30)
                continue
            with urllib.request.urlopen(url, timeout=30) as response:
                found = json.loads(response.read())
            if [item["slug"] for item in found["items"]] != [f"e{i}"]:
                os.killpg(server.pid, signal.SIGTERM)
                raise AssertionError(f"{i}: {found}\n{server.communicate(timeout=30)[1]}")
        every = f"http://127.0.0.1:{port}/api/v1/datasets?" + urllib.parse.urlencode(
            {"q": "公交"})
        if max_lag_ms == "default":  # the last publish may still be inside the lag: wait it out
            lag_over = time.monotonic() + DEFAULT_LAG_S
            _wait_for(lambda: time.monotonic() >= lag_over, 30)
        for _ in range(8):  # now whichever worker answers has all of them
            with urllib.request.urlopen(every, timeout=30) as response:
                assert json.loads(response.read())["total"] == 12
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def publish(port: int, token: str, slug: str, title_zh: str, title_en: str = "x") -> None:
    body = json.dumps({"slug": slug, "metadata": metadata(
        title={"zh": title_zh, "en": title_en})}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/datasets", data=body, method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201


def _total(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(json.loads(response.read())["total"])
    except OSError:
        return -1


def _slugs(url: str) -> list[str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return [item["slug"] for item in json.loads(response.read())["items"]]
    except OSError:
        return []
