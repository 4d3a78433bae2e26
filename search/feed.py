"""The search change feed: the transactional outbox read as a log, with a cursor per consumer.

Why a feed and not a queue: ``search_outbox`` rows are written in the catalogue transaction
that changes a dataset (so an index can never hold what the catalogue rolled back, nor miss
what it committed). If one consumer deleted the rows it had applied, only one index could ever
be fed. Instead every consumer (each host's local Tantivy index, a cluster being filled
during a migration) keeps its own position in ``search_feed_consumer`` and reads the rows
after it; ``prune`` removes only rows every registered consumer has passed.

Order: catalogue writes are serialised (SQLite's write lock, a PostgreSQL advisory lock held to
commit; see registry.database), so outbox ids become visible in increasing order and "rows
after my position" never skips a row committed late.

One writer per consumer: the consumer's row is also its lease (holder, expiry), taken and
renewed with a single conditional UPDATE, as the anchor worker's lease. A host may run several
processes that all try; exactly one applies the feed, the others only read the index.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from search.documents import SearchDocument

SQLITE_FEED_DDL = (
    """CREATE TABLE IF NOT EXISTS search_feed_consumer (
        name TEXT PRIMARY KEY,
        position INTEGER NOT NULL DEFAULT 0,
        holder TEXT,
        lease_expires_ms INTEGER NOT NULL DEFAULT 0,
        updated_ms INTEGER NOT NULL DEFAULT 0
    )""",
)
POSTGRES_FEED_DDL = (
    """CREATE TABLE IF NOT EXISTS search_feed_consumer (
        name TEXT PRIMARY KEY,
        position BIGINT NOT NULL DEFAULT 0,
        holder TEXT,
        lease_expires_ms BIGINT NOT NULL DEFAULT 0,
        updated_ms BIGINT NOT NULL DEFAULT 0
    )""",
)


def create_feed_schema(connection: Connection) -> None:
    ddl = SQLITE_FEED_DDL if connection.dialect.name == "sqlite" else POSTGRES_FEED_DDL
    for statement in ddl:
        connection.exec_driver_sql(statement)


# ---------------------------------------------------------------- writing the feed


def _json_default(value: object) -> str:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value)!r}")


def document_payload(doc: SearchDocument) -> str:
    """The engine-neutral payload of an "index" row: the search document itself (each
    consumer builds its own engine document from it)."""
    body = {k: v for k, v in doc.items() if k != "analysed"}
    return json.dumps(body, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def decode_document(payload: str) -> SearchDocument:
    body: dict[str, Any] = json.loads(payload)
    for name in ("issued", "modified"):
        raw = body.get(name)
        if isinstance(raw, str):
            body[name] = datetime.fromisoformat(raw) if "T" in raw else date.fromisoformat(raw)
    return body  # type: ignore[return-value]


def publish(session: Session, docs: Sequence[SearchDocument], removed: Sequence[str]) -> None:
    """Append index/delete rows in the caller's (catalogue) transaction."""
    rows: list[dict[str, Any]] = [
        {"dataset_id": d["dataset_id"], "op": "index", "version": d["version"],
         "payload": document_payload(d)} for d in docs]
    rows += [{"dataset_id": i, "op": "delete", "version": 0, "payload": None} for i in removed]
    if rows:
        session.execute(text("INSERT INTO search_outbox (dataset_id, op, version, payload) "
                             "VALUES (:dataset_id, :op, :version, :payload)"), rows)


# ---------------------------------------------------------------- reading the feed


@dataclass(frozen=True)
class FeedRow:
    id: int
    dataset_id: str
    op: str
    version: int
    payload: str | None


def head(session: Session) -> int:
    """The id of the last committed row (0 when the feed is empty): one index lookup."""
    return int(session.execute(text("SELECT coalesce(max(id), 0) FROM search_outbox"))
               .scalar_one())


def rows_after(session: Session, position: int, limit: int) -> list[FeedRow]:
    result = session.execute(
        text("SELECT id, dataset_id, op, version, payload FROM search_outbox "
             "WHERE id > :position ORDER BY id LIMIT :limit"),
        {"position": position, "limit": limit})
    return [FeedRow(int(r[0]), r[1], r[2], int(r[3]), r[4]) for r in result]


# ---------------------------------------------------------------- consumers and their leases


def try_lease(session: Session, consumer: str, holder: str, now_ms: int, ttl_ms: int) -> bool:
    """Take or renew the right to feed ``consumer``; False while another holder's lease runs."""
    claimed = session.execute(
        text("UPDATE search_feed_consumer SET holder = :holder, lease_expires_ms = :expires "
             "WHERE name = :name AND (holder = :holder OR lease_expires_ms < :now)"),
        {"holder": holder, "expires": now_ms + ttl_ms, "name": consumer, "now": now_ms})
    if claimed.rowcount == 1:  # type: ignore[attr-defined]
        return True
    exists = session.execute(text("SELECT 1 FROM search_feed_consumer WHERE name = :name"),
                             {"name": consumer}).first()
    if exists is not None:
        return False
    try:
        with session.begin_nested():
            session.execute(
                text("INSERT INTO search_feed_consumer (name, position, holder, "
                     "lease_expires_ms, updated_ms) VALUES (:name, 0, :holder, :expires, :now)"),
                {"name": consumer, "holder": holder, "expires": now_ms + ttl_ms, "now": now_ms})
    except IntegrityError:
        return False
    return True


def lease_taken_by_other(session: Session, consumer: str, holder: str, now_ms: int) -> bool:
    """Whether another holder's lease on ``consumer`` still runs — read without a write, so the
    processes that do not hold the lease can ask every tick without taking the database's
    write lock (on SQLite a write transaction queues behind every publish)."""
    row = session.execute(
        text("SELECT holder, lease_expires_ms FROM search_feed_consumer WHERE name = :name"),
        {"name": consumer}).first()
    return row is not None and row[0] not in (None, holder) and int(row[1]) >= now_ms


def register(session: Session, consumer: str, now_ms: int) -> None:
    """Make ``consumer`` known at position 0 (if new), so `prune` keeps rows it still needs."""
    exists = session.execute(text("SELECT 1 FROM search_feed_consumer WHERE name = :name"),
                             {"name": consumer}).first()
    if exists is None:
        with contextlib.suppress(IntegrityError), session.begin_nested():
            session.execute(
                text("INSERT INTO search_feed_consumer (name, position, holder, "
                     "lease_expires_ms, updated_ms) VALUES (:name, 0, NULL, 0, :now)"),
                {"name": consumer, "now": now_ms})


def release_lease(session: Session, consumer: str, holder: str) -> None:
    session.execute(text("UPDATE search_feed_consumer SET lease_expires_ms = 0 "
                         "WHERE name = :name AND holder = :holder"),
                    {"name": consumer, "holder": holder})


def record_position(session: Session, consumer: str, holder: str, position: int,
                    now_ms: int) -> bool:
    """Publish how far the consumer's index has applied the feed (for pruning and lag
    metrics); only the lease holder may. The index itself stores the authoritative position,
    committed atomically with the documents."""
    result = session.execute(
        text("UPDATE search_feed_consumer SET position = :position, updated_ms = :now "
             "WHERE name = :name AND holder = :holder"),
        {"position": position, "now": now_ms, "name": consumer, "holder": holder})
    return result.rowcount == 1  # type: ignore[attr-defined]


def advance(session: Session, consumer: str, position: int, now_ms: int) -> None:
    """Move ``consumer`` forward to ``position`` (never back), whoever holds its lease: used
    after a rebuild from the catalogue that already holds every row up to ``position``."""
    register(session, consumer, now_ms)
    session.execute(
        text("UPDATE search_feed_consumer SET position = :position, updated_ms = :now "
             "WHERE name = :name AND position < :position"),
        {"position": position, "now": now_ms, "name": consumer})


def position_of(session: Session, consumer: str) -> int:
    """Where ``consumer`` stands (0 when it is not registered yet: it needs every row)."""
    row = session.execute(text("SELECT position FROM search_feed_consumer WHERE name = :n"),
                          {"n": consumer}).first()
    return int(row[0]) if row else 0


def consumer_positions(session: Session) -> dict[str, int]:
    rows = session.execute(text("SELECT name, position FROM search_feed_consumer"))
    return {r[0]: int(r[1]) for r in rows}


def prune(session: Session) -> int:
    """Delete rows every registered consumer has applied; returns how many."""
    positions = consumer_positions(session)
    if not positions:
        return 0
    floor = min(positions.values())
    result = session.execute(text("DELETE FROM search_outbox WHERE id <= :floor"),
                             {"floor": floor})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def backlog(session: Session, consumer: str) -> int:
    position = position_of(session, consumer)
    return int(session.execute(text("SELECT count(*) FROM search_outbox WHERE id > :p"),
                               {"p": position}).scalar_one())
