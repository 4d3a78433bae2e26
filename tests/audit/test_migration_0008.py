"""Migration 0008 keeps one copy of each entry: it refuses to drop the second copy when the
two differ (tampering or a bug, named by leaf), and the downgrade restores it."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from registry.migrate import downgrade_database, upgrade_database
from tests.audit.helpers import build_catalogue


def test_upgrade_refuses_differing_copies_and_downgrade_restores_them(registry) -> None:  # type: ignore[no-untyped-def]
    catalogue = build_catalogue(registry)
    engine = registry.state.db.engine
    registry.state.db.dispose()
    downgrade_database(engine, "0006_slugs_never_ids")
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT v.log_entry, e.entry FROM dataset_versions v JOIN log_entries e "
            "ON e.idx = v.leaf_index")).all()
    assert len(rows) == 6 and all(copy.encode() == bytes(entry) for copy, entry in rows)
    with engine.begin() as connection:
        connection.execute(text("UPDATE dataset_versions SET log_entry = "
                                "replace(log_entry, :a, :b) WHERE leaf_index = 4"),
                           {"a": '"v":1', "b": '"v":9'})
    with pytest.raises(RuntimeError, match=r"log entry 4: .* differ"):
        upgrade_database(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE dataset_versions SET log_entry = "
                                "replace(log_entry, :a, :b) WHERE leaf_index = 4"),
                           {"a": '"v":9', "b": '"v":1'})
    upgrade_database(engine)
    with engine.connect() as connection:
        columns = list(connection.execute(text("SELECT * FROM dataset_versions LIMIT 1")).keys())
    assert "log_entry" not in columns
    r = registry.client.get(f"/api/v1/datasets/{catalogue.public['id']}/versions/1/proof")
    assert r.status_code == 200
