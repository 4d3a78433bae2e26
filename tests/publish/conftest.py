"""Fixtures of the publish tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from registry.database import Database


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A migrated catalogue database of its own, without the app around it."""
    from registry.migrate import upgrade_database

    database = Database(database_url)
    upgrade_database(database.engine)
    try:
        yield database
    finally:
        database.dispose()
