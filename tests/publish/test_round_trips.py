"""Fewer round trips to PostgreSQL, without giving anything up (registry/database.py).

Reads run without a transaction on PostgreSQL, and a publish batch sends its closing inserts
in one pipeline. These tests hold what that must not change: a read on SQLite still sees one
snapshot, no PostgreSQL read leaves its connection "idle in transaction", a statement failing
inside a pipeline rolls the whole transaction back and surfaces as the usual SQLAlchemy error,
and what a batch writes inside its pipeline is built from data read before it (inside a
pipeline SQLAlchemy sees no rows: `test_a_read_inside_a_pipeline_sees_no_rows`).
"""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from anchoring.log_store import LogEntry
from registry.database import Database, pipelined
from registry.datasets.models import Dataset
from tests.catalogue.helpers import metadata


def test_a_postgresql_read_leaves_no_transaction_open(db) -> None:  # type: ignore[no-untyped-def]
    """Between its statements a read session holds no transaction: it neither pins old row
    versions (vacuum) nor shows up as "idle in transaction" to the operator."""
    if db.is_sqlite:
        pytest.skip("PostgreSQL sessions")
    with db.read() as session:
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with db.engine.connect() as observer:
            state = observer.execute(text(
                "SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).scalar()
    assert state == "idle"


def test_a_sqlite_read_sees_one_snapshot(db) -> None:  # type: ignore[no-untyped-def]
    """SQLite keeps its read transaction: a read session sees the database as it was at its
    first statement, even when a write commits in between."""
    if not db.is_sqlite:
        pytest.skip("SQLite snapshots")
    with db.read() as session:
        before = session.execute(text("SELECT count(*) FROM log_entries")).scalar_one()
        writer = threading.Thread(target=_append_raw_entry, args=(db, 0))
        writer.start()
        writer.join(30)
        during = session.execute(text("SELECT count(*) FROM log_entries")).scalar_one()
    with db.read() as session:
        after = session.execute(text("SELECT count(*) FROM log_entries")).scalar_one()
    assert (before, during, after) == (0, 0, 1)


def _append_raw_entry(db: Database, index: int) -> None:
    from datetime import UTC, datetime

    with db.write() as session:
        session.execute(insert(LogEntry), [{"idx": index, "entry": b"x", "leaf_hash": b"h" * 32,
                                            "created_at": datetime.now(UTC)}])


def test_a_failure_inside_a_pipeline_rolls_everything_back(db) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    _append_raw_entry(db, 0)
    now = datetime.now(UTC)
    with pytest.raises(IntegrityError), db.write() as session:
        session.execute(insert(LogEntry), [{"idx": 1, "entry": b"before", "leaf_hash": b"a" * 32,
                                            "created_at": now}])
        with pipelined(session):
            session.execute(insert(LogEntry), [
                {"idx": 2, "entry": b"fine", "leaf_hash": b"b" * 32, "created_at": now},
                {"idx": 0, "entry": b"taken", "leaf_hash": b"c" * 32, "created_at": now}])
    with db.read() as session:
        stored = session.execute(select(LogEntry.idx, LogEntry.entry)).all()
    assert [(idx, bytes(entry)) for idx, entry in stored] == [(0, b"x")]


def test_a_sub_organisation_s_batched_publish_is_indexed_under_its_parents(registry) -> None:  # type: ignore[no-untyped-def]
    """The index rows a batch sends in its pipeline carry the publisher's whole ancestry
    (three levels), read from the database before the pipeline starts: inside it a read
    returns no rows."""
    registry.org("mof")
    registry.org("mof-tax", parent="mof")
    registry.org("mof-tax-sh", parent="mof-tax")
    headers = registry.auth(registry.token("mof-tax-sh"))
    client = registry.app.test_client()
    barrier = threading.Barrier(3)
    statuses: list[int] = []

    def publish(i: int) -> None:
        barrier.wait()
        response = client.post("/api/v1/datasets", headers=headers, json={
            "metadata": metadata(title={"zh": f"税收{i}", "en": f"tax {i}"})})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [201, 201, 201]
    with registry.state.db.read() as session:
        ids = set(session.scalars(select(Dataset.id).where(
            Dataset.organization_id == "mof-tax-sh")))
        payloads = session.execute(text(
            "SELECT dataset_id, payload FROM search_outbox WHERE op = 'index'")).all()
    paths = {dataset_id: json.loads(payload)["organization_path"]
             for dataset_id, payload in payloads if dataset_id in ids}
    assert len(ids) == 3
    assert paths == {dataset_id: ["mof", "mof-tax", "mof-tax-sh"] for dataset_id in ids}


def test_a_read_inside_a_pipeline_sees_no_rows(db) -> None:  # type: ignore[no-untyped-def]
    """Why `pipelined` is for statements only: on PostgreSQL a SELECT sent inside it returns
    no rows to SQLAlchemy. If this ever changes, the rule may be relaxed."""
    if db.is_sqlite:
        pytest.skip("PostgreSQL pipelines")
    with db.write() as session, pipelined(session):
        result = session.execute(text("SELECT 42"))
        assert not result.returns_rows
