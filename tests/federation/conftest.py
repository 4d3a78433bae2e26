"""Two real registries (hub and member) on their own databases, served over loopback HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from werkzeug.serving import make_server

from tests.conftest import (
    RegistryHarness,
    build_registry,
    create_postgres_database,
    drop_postgres_database,
)


@dataclass
class Served:
    harness: RegistryHarness
    url: str
    _server: object
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.shutdown()  # type: ignore[attr-defined]
        self._thread.join(5)


def serve(harness: RegistryHarness) -> Served:
    server = make_server("127.0.0.1", 0, harness.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return Served(harness, f"http://127.0.0.1:{server.server_port}", server, thread)


@pytest.fixture
def make_registry(request: pytest.FixtureRequest, database_url: str, tmp_path):  # type: ignore[no-untyped-def]
    """Build extra registries on the same kind of database as `database_url`."""
    made: list[RegistryHarness] = []
    dropped: list[str] = []

    def make(name: str, origin: str) -> RegistryHarness:
        import os

        if database_url.startswith("sqlite"):
            url = f"sqlite:///{tmp_path / (name + '.db')}"
        else:
            admin = request.getfixturevalue("postgres_admin_dsn")
            url, db_name = create_postgres_database(admin)
            dropped.append(db_name)
        os.environ["NDR_LOG_ORIGIN"] = origin
        try:
            harness = build_registry(url, tmp_path / name)
        finally:
            os.environ.pop("NDR_LOG_ORIGIN", None)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.state.stop()
        harness.state.db.dispose()
    if dropped:
        admin = request.getfixturevalue("postgres_admin_dsn")
        for name in dropped:
            drop_postgres_database(admin, name)


@pytest.fixture
def served() -> Iterator[list[Served]]:
    running: list[Served] = []
    yield running
    for item in running:
        item.stop()


class Proxy:
    """An HTTP front for a member that can rewrite what it answers (a hostile member)."""

    def __init__(self, upstream: str) -> None:
        import urllib.error
        import urllib.request

        from flask import Flask, Response, request

        self.upstream = upstream
        self.mutate: dict[str, object] = {}  # path prefix -> function(bytes) -> bytes
        app = Flask("proxy")

        @app.route("/<path:path>", methods=["GET", "POST"])
        def forward(path: str) -> Response:
            url = f"{self.upstream}/{path}"
            if request.query_string:
                url += "?" + request.query_string.decode()
            try:
                with urllib.request.urlopen(url, timeout=10) as answer:
                    status, body = answer.status, answer.read()
                    ctype = answer.headers.get("Content-Type", "")
            except urllib.error.HTTPError as exc:
                status, body, ctype = exc.code, exc.read(), exc.headers.get("Content-Type", "")
            for prefix, change in self.mutate.items():
                if path.startswith(prefix):
                    body = change(body)  # type: ignore[operator]
            return Response(body, status=status, content_type=ctype)

        self.app = app
