"""Fixtures for the transparency log tests: a real database, a real log, a real HTTP server."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from tlog_helpers import LogEnv, Served, make_app, make_log_env
from werkzeug.serving import make_server


@pytest.fixture
def log_env(database_url: str) -> Iterator[LogEnv]:
    env = make_log_env(database_url)
    yield env
    env.db.dispose()


@pytest.fixture
def sqlite_log_env(tmp_path) -> Iterator[LogEnv]:  # type: ignore[no-untyped-def]
    env = make_log_env(f"sqlite:///{tmp_path / 'log.db'}")
    yield env
    env.db.dispose()


@pytest.fixture
def serve() -> Iterator:  # type: ignore[type-arg]
    """serve(env) starts a threaded werkzeug server on 127.0.0.1 for that log."""
    servers = []

    def start(env: LogEnv) -> Served:
        server = make_server("127.0.0.1", 0, make_app(env), threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        base = f"http://127.0.0.1:{server.server_port}"
        return Served(url=base + "/log/", base=base)

    yield start
    for server, thread in servers:
        server.shutdown()
        thread.join(10)
