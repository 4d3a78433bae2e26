"""Fixtures: a real database (SQLite file or fresh PostgreSQL) with the search tables, and the
backend that belongs to it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# pytest puts tests/ on sys.path (rootdir conftest, "prepend" import mode), and this directory
# is called "search": without the project root first, `import search` would find this folder as
# a namespace package instead of the real package. (Fix for the whole suite: pytest
# `pythonpath = ["."]` in pyproject.toml.)
_ROOT = str(Path(__file__).resolve().parents[2])
if sys.path[0] != _ROOT:
    sys.path.insert(0, _ROOT)

from registry.database import Database  # noqa: E402
from search import SearchBackend, backend_for_dialect, create_search_schema  # noqa: E402


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    with database.engine.begin() as connection:
        create_search_schema(connection)
    yield database
    database.dispose()


@pytest.fixture
def backend(db: Database) -> SearchBackend:
    return backend_for_dialect(db.engine.dialect.name)
