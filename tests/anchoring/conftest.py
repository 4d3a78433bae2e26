"""Fixtures for the transparency log tests: a real database, a real log, a real HTTP server."""

from __future__ import annotations

import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from werkzeug.serving import make_server

from anchoring.log_store import LogBase, TransparencyLog
from anchoring.note import NoteSigner
from registry.database import Database
from registry.log_views import log_blueprint

ORIGIN = "registry.example.gov/log"


@dataclass
class LogEnv:
    db: Database
    log: TransparencyLog
    signer: NoteSigner

    def append(self, entries: list[bytes]) -> list[int]:
        with self.db.write() as session:
            return [leaf.index for leaf in self.log.append(session, entries)]

    def sign(self):  # type: ignore[no-untyped-def]
        with self.db.write() as session:
            return self.log.sign_checkpoint_if_grown(session)


def make_log_env(url: str, signer: NoteSigner | None = None) -> LogEnv:
    db = Database(url)
    LogBase.metadata.create_all(db.engine)
    signer = signer or NoteSigner.generate(ORIGIN)
    return LogEnv(db=db, log=TransparencyLog(ORIGIN, signer), signer=signer)


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


def make_app(env: LogEnv) -> Flask:
    app = Flask(__name__)
    app.register_blueprint(log_blueprint)
    app.extensions["ndr"] = types.SimpleNamespace(db=env.db, log=env.log)
    return app


@dataclass
class Served:
    url: str  # the log prefix, ending in /log/
    base: str


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
