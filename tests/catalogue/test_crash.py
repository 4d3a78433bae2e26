"""kill -9 the server while departments publish; after a restart nothing acknowledged is lost.

A real gunicorn process group serves a real database; client threads publish until the group is
killed with SIGKILL. After a restart: every write a client saw acknowledged (201) is in the log
at the index it was told, byte for byte; the log's root recomputes from the stored leaves to the
last signed checkpoint's root at that size; and the next checkpoint is consistent with it.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.catalogue.helpers import metadata

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(database_url: str, var_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": database_url, "NDR_VAR_DIR": str(var_dir),
           "NDR_CHECKPOINT_INTERVAL": "0.2", "NDR_ANCHOR_INPROCESS": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--threads", "4", "--log-level", "warning", "app:create_app()"],
        cwd=REPO, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)


def _wait_ready(port: int, deadline: float = 60.0) -> None:
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("server did not become ready")


def _post(port: int, token: str, body: bytes) -> tuple[int, dict | None]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/datasets", data=body, method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, None


def _wait_for(condition, deadline: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    stop = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > stop:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


def test_kill_9_during_concurrent_publishing_loses_nothing_acknowledged(
        database_url: str, tmp_path: Path) -> None:
    from sqlalchemy import select

    from anchoring import tlog
    from anchoring.log_store import LogEntry, hash_reader
    from registry.datasets.models import DatasetVersion
    from tests.conftest import build_registry

    harness = build_registry(database_url, tmp_path / "var")  # migrate, key, organisation
    harness.org("mot")
    token = harness.token("mot")
    harness.state.db.dispose()

    port = _free_port()
    server = _start(database_url, tmp_path / "var", port)
    _wait_ready(port)
    acked: list[tuple[str, int, str]] = []  # (dataset id, leaf index, log entry)
    lock = threading.Lock()
    stop = threading.Event()

    def publish(worker: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            payload = json.dumps({"metadata": metadata(keywords=[f"w{worker}-{n}"])}).encode()
            try:
                status, body = _post(port, token, payload)
            except (OSError, http.client.HTTPException):
                continue  # the server died mid-request or mid-answer: not acknowledged
            if status == 201 and body is not None:
                with lock:
                    acked.append((body["id"], body["log"]["index"], body["log"]["entry"]))

    threads = [threading.Thread(target=publish, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    _wait_for(lambda: len(acked) >= 30)

    def checkpointed() -> bool:  # a checkpoint signed mid-stream, before the kill
        with harness.state.db.read() as session:
            return harness.state.log.latest_checkpoint(session) is not None

    _wait_for(checkpointed)
    _wait_for(lambda: len(acked) >= 60)
    os.killpg(server.pid, signal.SIGKILL)
    server.wait(10)
    stop.set()
    for t in threads:
        t.join(15)
    assert len(acked) >= 60

    with harness.state.db.read() as session:
        signed_before = harness.state.log.latest_checkpoint(session)
    restarted = _start(database_url, tmp_path / "var", port)
    try:
        _wait_ready(port)
        with harness.state.db.read() as session:
            size = harness.state.log.size(session)
            entries = {row.idx: bytes(row.entry) for row in session.scalars(select(LogEntry))}
            versions = {(v.dataset_id, v.leaf_index) for v in session.scalars(
                select(DatasetVersion).where(DatasetVersion.leaf_index.is_not(None)))}
            reader = hash_reader(session)
            assert sorted(entries) == list(range(size))  # gap-free
            for dataset_id, index, entry in acked:
                assert entries[index] == entry.encode(), f"leaf {index} differs"
                assert (dataset_id, index) in versions
            # The root recomputes from the leaves alone and matches the stored tree.
            leaves = [tlog.hash_leaf(entries[i]) for i in range(size)]
            assert _root(leaves) == tlog.tree_hash(size, reader)
            assert signed_before is not None
            assert _root(leaves[: signed_before.size]) == signed_before.root
        # The restarted server signs the next checkpoint; it must extend the old one.
        def grown() -> bool:
            with harness.state.db.read() as session:
                latest = harness.state.log.latest_checkpoint(session)
                return latest is not None and latest.size == size
        _wait_for(grown)
        with harness.state.db.read() as session:
            latest = harness.state.log.latest_checkpoint(session)
            if signed_before is not None and signed_before.size < latest.size:
                proof = harness.state.log.consistency_proof(session, signed_before.size,
                                                            latest.size)
                tlog.check_tree(proof, latest.size, latest.root, signed_before.size,
                                signed_before.root)
    finally:
        os.killpg(restarted.pid, signal.SIGTERM)
        restarted.wait(15)
        harness.state.db.dispose()


def _root(leaf_hashes: list[bytes]) -> bytes:
    """The RFC 9162 root computed from leaf hashes alone."""
    from anchoring import tlog

    return tlog.root_from_right_edge(tlog.extend_right_edge(0, [], leaf_hashes))


pytestmark = pytest.mark.timeout(240)
