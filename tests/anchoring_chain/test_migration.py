"""The hand-written migration 0004_anchors creates exactly the tables the models describe."""

from __future__ import annotations

import importlib.util

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import create_engine, inspect

from anchoring.anchor_store import AnchorBase

from .conftest import REPO


def load_migration():  # type: ignore[no-untyped-def]
    path = REPO / "registry" / "migrations" / "versions" / "0004_anchors.py"
    spec = importlib.util.spec_from_file_location("migration_0004", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_migration_matches_models_and_downgrades(database_url: str) -> None:
    migration = load_migration()
    assert (migration.revision, migration.down_revision) == ("0004_anchors", "0003_search")
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as connection:
            with Operations.context(MigrationContext.configure(connection)):
                migration.upgrade()
            assert set(inspect(connection).get_table_names()) == {
                "anchors", "anchor_lease", "anchor_journal"}
            assert compare_metadata(MigrationContext.configure(connection),
                                    AnchorBase.metadata) == []
            with Operations.context(MigrationContext.configure(connection)):
                migration.downgrade()
            assert inspect(connection).get_table_names() == []
    finally:
        engine.dispose()
