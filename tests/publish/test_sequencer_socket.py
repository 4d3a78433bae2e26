"""The sequencer process (`ndr sequencer`): every worker's publishes in one batch, over a Unix
socket, and what happens when that process is missing, killed mid-write, or talked to by a
stranger. A real socket, a real database; the worker side is the API under the test client.
"""

from __future__ import annotations

import os
import pickle
import socket
import stat
import struct
import threading
from multiprocessing.connection import Client, Listener
from pathlib import Path

import pytest

from registry.datasets.sequencer import PublishSequencer, sqlite_lock_file
from registry.datasets.sequencer_socket import (
    RemoteSequencer,
    SequencerServer,
    SequencerUnavailable,
    default_socket_path,
)
from registry.datasets.write_requests import PatchWrite
from tests.catalogue.helpers import metadata
from tests.publish.test_sequencer import _post, _together

KEY = b"s" * 32


@pytest.fixture
def wired(registry, tmp_path):  # type: ignore[no-untyped-def]
    """The API of one worker (its own sequencer kept for fallback) and a sequencer server."""
    state = registry.state
    central = PublishSequencer(state.db, state.services, linger=0.05,
                               lock_file=sqlite_lock_file(state.db))
    server = SequencerServer(central, tmp_path / "sequencer.sock", KEY)
    server.start()
    state.remote_sequencer = RemoteSequencer(tmp_path / "sequencer.sock", KEY)
    registry.org("mot")
    try:
        yield registry, registry.auth(registry.token("mot")), server
    finally:
        server.stop()


def test_publishes_of_many_threads_are_recorded_by_the_sequencer_process(wired) -> None:  # type: ignore[no-untyped-def]
    registry, headers, server = wired
    local = registry.state.sequencer
    bodies = [{"metadata": metadata(title={"zh": f"批{i}", "en": f"batch {i}"})}
              for i in range(12)]
    responses = _together([lambda b=b: _post(registry, headers, b) for b in bodies])
    assert [r.status_code for r in responses] == [201] * 12
    indexes = sorted(r.get_json()["log"]["index"] for r in responses)
    assert indexes == list(range(12))  # gap-free, each client its own leaf
    assert all(r.get_json()["log"]["receipt"] for r in responses)
    assert server.sequencer.items == 12 and local.items == 0  # all went through the socket
    assert server.sequencer.batches < 12, "the sequencer process did not batch them"
    assert all(r.headers["Location"].startswith("/api/v1/datasets/") for r in responses)
    metrics = registry.app.test_client().get("/metrics").text
    assert 'ndr_publish_sequencer_writes_total{outcome="answered"} 12' in metrics


def test_a_refused_write_comes_back_as_its_own_problem(wired) -> None:  # type: ignore[no-untyped-def]
    registry, headers, server = wired
    assert _post(registry, headers, {"metadata": metadata(), "slug": "roads"}).status_code == 201
    again = _post(registry, headers, {"metadata": metadata(), "slug": "roads"},
                  **{"Accept-Language": "en"})
    assert again.status_code == 409
    assert again.content_type == "application/problem+json"
    assert again.get_json()["errors"][0]["pointer"] == "/slug"
    dataset = _post(registry, headers, {"metadata": metadata(), "slug": "rail"}).get_json()
    stale = registry.app.test_client().patch(
        f"/api/v1/datasets/{dataset['id']}", json={"metadata": {"keywords": ["x"]}},
        headers={**headers, "If-Match": '"v9"'})
    assert stale.status_code == 412
    assert server.sequencer.items == 2


def test_without_the_sequencer_process_the_worker_records_the_write_itself(wired) -> None:  # type: ignore[no-untyped-def]
    registry, headers, server = wired
    server.stop()  # gone, socket file removed
    response = _post(registry, headers, {"metadata": metadata()})
    assert response.status_code == 201
    assert registry.state.sequencer.items == 1 and server.sequencer.items == 0
    metrics = registry.app.test_client().get("/metrics").text
    assert 'ndr_publish_sequencer_writes_total{outcome="unavailable"} 1' in metrics


def test_a_stale_connection_to_a_stopped_sequencer_falls_back(wired, tmp_path) -> None:  # type: ignore[no-untyped-def]
    registry, headers, server = wired
    assert _post(registry, headers, {"metadata": metadata()}).status_code == 201
    server.stop()  # the worker thread's cached connection now leads nowhere
    response = _post(registry, headers, {"metadata": metadata()})
    assert response.status_code == 201
    with registry.state.db.read() as session:
        assert registry.state.log.size(session) == 2


def test_a_peer_without_the_key_is_refused_and_the_server_goes_on(wired, tmp_path) -> None:  # type: ignore[no-untyped-def]
    registry, headers, server = wired
    stranger = RemoteSequencer(tmp_path / "sequencer.sock", b"wrong key" * 4)
    request = PatchWrite(None, "any", {"metadata": {}}, None, "/api/v1/datasets")
    with pytest.raises(SequencerUnavailable):
        stranger.submit(request)
    with socket.socket(socket.AF_UNIX) as raw:  # no handshake at all: a pickle straight in
        raw.connect(str(tmp_path / "sequencer.sock"))
        payload = pickle.dumps(request)
        raw.sendall(struct.pack("!i", len(payload)) + payload)
        raw.settimeout(10)
        while raw.recv(4096):  # the server's challenge, then it hangs up
            pass
    assert _post(registry, headers, {"metadata": metadata()}).status_code == 201
    assert server.sequencer.items == 1


def test_a_keyed_peer_sending_something_else_gets_an_error_not_a_crash(wired, tmp_path) -> None:  # type: ignore[no-untyped-def]
    registry, headers, _server = wired
    with Client(str(tmp_path / "sequencer.sock"), family="AF_UNIX", authkey=KEY) as peer:
        peer.send(("DROP TABLE datasets", 1))
        kind, detail = peer.recv()
    assert kind == "failed" and "not a write request" in detail
    assert _post(registry, headers, {"metadata": metadata()}).status_code == 201


def test_the_socket_is_private(wired, tmp_path) -> None:  # type: ignore[no-untyped-def]
    mode = stat.S_IMODE(os.stat(tmp_path / "sequencer.sock").st_mode)
    assert mode & 0o077 == 0, oct(mode)


def test_a_sequencer_dying_after_the_request_was_sent_gives_503(registry, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The outcome is unknown to the worker: it must neither claim success nor record the
    write a second time. The client is told to retry (with its Idempotency-Key)."""
    path = tmp_path / "dying.sock"
    listener = Listener(str(path), family="AF_UNIX", authkey=KEY)

    def take_and_die() -> None:
        with listener.accept() as connection:
            connection.recv()  # the request arrived; the process dies before answering

    thread = threading.Thread(target=take_and_die)
    thread.start()
    registry.state.remote_sequencer = RemoteSequencer(path, KEY)
    registry.org("mot")
    headers = registry.auth(registry.token("mot"))
    response = _post(registry, headers, {"metadata": metadata()})
    thread.join(10)
    listener.close()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.get_json()["type"].endswith("/sequencer-interrupted")
    assert registry.state.sequencer.items == 0  # not recorded again by the worker
    with registry.state.db.read() as session:
        assert registry.state.log.size(session) == 0


def test_a_long_var_directory_still_gets_a_usable_socket_name(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    path = default_socket_path(deep)
    assert len(os.fsencode(path)) < 108
    assert path != default_socket_path(tmp_path / "other")
    short = default_socket_path(Path("/var/lib/ndr"))
    assert short == Path("/var/lib/ndr/publish-sequencer.sock")
