"""The deployment as `make run` starts it (gunicorn --config deploy/gunicorn.conf.py): the
master starts `ndr sequencer` beside the workers, the workers send it their publishes, and
when it is killed with SIGKILL in the middle of a stream of publishes, nothing acknowledged is
lost, nothing is recorded twice, and the workers go on recording writes themselves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.catalogue.helpers import metadata
from tests.security.servers import REPO, Gunicorn, _env, _free_port, _wait_for


def _ndr(var: Path, database_url: str, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", "from registry.cli import cli; cli()", *args], cwd=REPO,
        env=_env(var, DATABASE_URL=database_url), check=True, capture_output=True, text=True,
        timeout=120).stdout


def _sequencer_pids(master: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(next(line.split()[1] for line in status.splitlines()
                        if line.startswith("PPid:")))
        if ppid == master and b"sequencer" in cmdline:
            pids.append(int(entry.name))
    return pids


def _publish(port: int, token: str, title: str) -> tuple[int, dict]:
    body = json.dumps({"metadata": metadata(title={"zh": title, "en": title})}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/datasets", data=body, method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), json.loads(error.read() or b"{}")


@pytest.mark.slow
def test_killing_the_sequencer_process_mid_stream_loses_nothing(database_url: str,
                                                                 tmp_path: Path) -> None:
    var = tmp_path / "var"
    env = _env(var, DATABASE_URL=database_url)
    _ndr(var, database_url, "init")
    _ndr(var, database_url, "org", "create", "mot", "--name-en", "Transport")
    token = _ndr(var, database_url, "token", "create", "--org", "mot").strip()
    port = _free_port()
    server = Gunicorn(["--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
                       "--config", str(REPO / "deploy" / "gunicorn.conf.py")],
                      env | {"NDR_ACCESS_LOG": "/dev/null"}, tmp_path / "gunicorn.log")
    try:
        _wait_for(lambda: _sequencer_pids(server.process.pid), 60, "the sequencer process")
        (sequencer,) = _sequencer_pids(server.process.pid)
        _wait_for(lambda: _publish(port, token, "warm-up")[0] == 201, 120, "the first write")
        results: list[tuple[int, dict]] = []
        lock = threading.Lock()
        killed = threading.Event()

        def publisher(n: int) -> None:
            for i in range(40):
                outcome = _publish(port, token, f"p{n}-{i}")
                with lock:
                    results.append(outcome)
                    if len(results) == 60:
                        os.kill(sequencer, signal.SIGKILL)  # mid-stream
                        killed.set()

        threads = [threading.Thread(target=publisher, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        assert killed.is_set()
        statuses = [status for status, _ in results]
        assert set(statuses) <= {201, 503}, statuses  # 503: the write in flight at the kill
        assert statuses.count(503) <= 4, statuses     # at most one per worker thread
        acknowledged = [body for status, body in results if status == 201]
        assert len(acknowledged) >= 156
        indexes = [body["log"]["index"] for body in acknowledged]
        assert len(set(indexes)) == len(indexes)      # nobody got another's leaf
        # every acknowledged write is in the log at its index, its dataset readable
        for body in acknowledged[::7] + acknowledged[-4:]:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/v1/datasets/{body['id']}", timeout=30) as r:
                assert json.loads(r.read())["log"]["index"] == body["log"]["index"]
        def checkpoint_size() -> int:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/log/checkpoint",
                                        timeout=30) as r:
                return int(r.read().decode().splitlines()[1])

        _wait_for(lambda: checkpoint_size() >= len(acknowledged) + 1, 60, "a checkpoint")
        size = checkpoint_size()
        # every leaf is one acknowledged write, the warm-up, or a write in flight at the kill
        assert len(acknowledged) + 1 <= size <= len(acknowledged) + 1 + statuses.count(503)
    finally:
        server.stop()
