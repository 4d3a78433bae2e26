"""PostgreSQL connections are checked before use only after sitting idle (registry/database.py):
a connection the server dropped while it was idle is replaced before a request uses it, and a
connection in use a moment ago is not checked again (two round trips per checkout saved)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from registry import database
from registry.database import Database


def _drop_every_other_connection(db: Database) -> int:
    """What a server restart does to the pooled connections: the server ends them (asked
    from a connection of another pool)."""
    killer = Database(db.url)
    try:
        with killer.engine.connect() as connection:
            killed = connection.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar_one()
    finally:
        killer.dispose()
    return int(killed)


def _backend_pid(db: Database) -> int:
    with db.read() as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


@pytest.fixture
def pg(database_url: str):  # type: ignore[no-untyped-def]
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL connection pool")
    db = Database(database_url)
    try:
        yield db
    finally:
        db.dispose()


def test_a_connection_dropped_while_idle_is_replaced_before_use(pg, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    first = _backend_pid(pg)
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.0)  # "idle long enough"
    assert _drop_every_other_connection(pg) >= 1
    second = _backend_pid(pg)  # no error: the ping found it dead and the pool reconnected
    assert second != first


def test_a_connection_used_a_moment_ago_is_not_pinged(pg, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Without the ping, a dropped connection fails on first use; so a failure here shows the
    checkout skipped the ping for a connection that came back a moment ago."""
    from sqlalchemy.exc import OperationalError

    _backend_pid(pg)
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 3600.0)
    assert _drop_every_other_connection(pg) >= 1
    with pytest.raises(OperationalError):
        _backend_pid(pg)
    assert _backend_pid(pg) > 0  # the pool replaced it after the failure
