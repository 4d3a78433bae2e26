"""Engines and sessions for the catalogue database (SQLite by default, PostgreSQL in production).

Why the SQLite set-up looks like this: several gunicorn workers write to one file, so every
write transaction starts with ``BEGIN IMMEDIATE`` (it takes the write lock up front instead of
failing half-way with SQLITE_BUSY), while reads keep plain deferred transactions so they never
queue behind writers. WAL mode lets readers proceed during a write.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Executable, MetaData, create_engine, event, text
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from anchoring.log_store import NAMING_CONVENTION


class Base(DeclarativeBase):
    """Declarative base of the catalogue's own tables (the log and search keep their own)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def is_sqlite(url_or_engine: str | Engine) -> bool:
    url = url_or_engine if isinstance(url_or_engine, str) else str(url_or_engine.url)
    return url.startswith("sqlite")


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine with the pragmas and begin behaviour the registry relies on."""
    if is_sqlite(url):
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False,
                                                             "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_on_begin(connection) -> None:  # type: ignore[no-untyped-def]
            if connection.get_execution_options().get("write", False):
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.exec_driver_sql("BEGIN")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, echo=echo, pool_size=5, max_overflow=10)
    _ping_when_idle(engine)
    return engine


PING_AFTER_IDLE_SECONDS = 2.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only when it sat idle in the pool (SQLAlchemy's
    custom pessimistic disconnect handling). `pool_pre_ping` checked on every checkout: with
    psycopg a BEGIN and a SELECT 1, two round trips before each request's first statement and
    before each publish batch. Under load connections come back within milliseconds; a
    connection idle long enough for the server to have restarted is still checked, and a dead
    one is replaced before anyone uses it."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
        record.info["ndr_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        idle_since = record.info.get("ndr_idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # just connected, or in use a moment ago
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi_connection.rollback()  # end the ping's own transaction
        except Exception as exc:  # the server went away while the connection sat idle
            raise DisconnectionError() from exc


CATALOGUE_WRITE_LOCK = 0x6E6472  # "ndr": one advisory lock id for all catalogue writes


@contextmanager
def pipelined(session: Session) -> Iterator[None]:
    """Send the block's statements to PostgreSQL in one round trip (psycopg's pipeline mode).

    Why: a publish batch ends with half a dozen inserts and updates, and each was a round trip
    taken while the batch held the catalogue write lock; on a busy machine every one of them
    waits to be scheduled twice, once in the server and once back here. In pipeline mode the
    driver queues them and the server runs them in order; leaving the block sends them and
    waits once. Only for statements whose results nobody reads (INSERT and UPDATE without
    RETURNING, through Core: the ORM's flush reads row counts). A SELECT inside the block, an
    ORM lazy load included, silently gets no rows: read everything first. A failure surfaces
    when the block ends, as the SQLAlchemy error the statement would have raised, and the
    caller's transaction is rolled back as usual. Elsewhere (SQLite) the block simply runs.
    """
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    import psycopg  # the PostgreSQL driver: only needed, and only installed, for PostgreSQL

    driver = session.connection().connection.driver_connection
    try:
        with driver.pipeline():
            yield
    except psycopg.Error as exc:
        raise DBAPIError.instance(None, None, exc, psycopg.Error) from exc


def serialize_catalogue_writes(session: Session) -> None:
    """Make catalogue writes take turns on PostgreSQL, as BEGIN IMMEDIATE does on SQLite.

    Writes are rare next to reads, and taking turns makes slug choice, external-id checks and
    log appends see each other's committed rows (READ COMMITTED re-reads per statement), so
    concurrent writers never collide on a unique constraint half-way through.
    """
    statement = catalogue_write_lock(session)
    if statement is not None:
        session.execute(statement)
        holding_catalogue_write_lock(session)


def catalogue_write_lock(session: Session) -> Executable | None:
    """The statement that takes the catalogue write lock, or None when there is none to take
    (SQLite, or taken already in this transaction: a publish batch plans many writes). Whoever
    runs it calls `holding_catalogue_write_lock` next."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    held = session.info.get(_HOLDS_WRITE_LOCK)
    if held is not None and held is session.get_transaction():
        return None
    return text("SELECT pg_advisory_xact_lock(:id)").bindparams(id=CATALOGUE_WRITE_LOCK)


def holding_catalogue_write_lock(session: Session) -> None:
    session.info[_HOLDS_WRITE_LOCK] = session.get_transaction()


def read_together(session: Session, statements: Sequence[Executable]) -> list[list[Any]]:
    """Run the statements in order, each as its own statement (its own snapshot, so one
    placed after a lock sees what the lock waited for), and return each one's rows.

    Why: a publish batch starts with a lock and a few reads, and on PostgreSQL each was a
    round trip taken on a busy machine, where every round trip waits to be scheduled twice.
    There they go out in one pipeline and the driver waits once; their rows are plain tuples
    (no ORM objects). Parameters go to the driver as they are (no SQLAlchemy bind
    processing): plain strings and integers. Elsewhere (SQLite) they simply run one after the
    other.
    """
    if session.get_bind().dialect.name != "postgresql":
        return [[tuple(row) for row in session.execute(statement)] for statement in statements]
    import psycopg  # the PostgreSQL driver: only needed, and only installed, for PostgreSQL

    dialect = session.get_bind().dialect
    compiled = [statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
                for statement in statements]
    driver = session.connection().connection.driver_connection
    cursors = [driver.cursor() for _ in compiled]
    try:
        with driver.pipeline():
            for cursor, statement in zip(cursors, compiled, strict=True):
                cursor.execute(statement.string, statement.params)
        return [cursor.fetchall() if cursor.description is not None else []
                for cursor in cursors]
    except psycopg.Error as exc:
        raise DBAPIError.instance(None, None, exc, psycopg.Error) from exc
    finally:
        for cursor in cursors:
            cursor.close()


_HOLDS_WRITE_LOCK = "ndr.catalogue_write_lock"


class Database:
    """Owns the engine and hands out read and write sessions."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self._reader = self._reading_engine()
        self._read = sessionmaker(bind=self._reader, expire_on_commit=False)
        self._write = sessionmaker(bind=self.engine.execution_options(write=True),
                                   expire_on_commit=False)

    def _reading_engine(self) -> Engine:
        """On PostgreSQL, reads run without a transaction (autocommit). Under READ COMMITTED a
        transaction gives a read nothing: every statement takes its own snapshot either way.
        But psycopg sends BEGIN as a round trip of its own before the first statement, and the
        pool sends ROLLBACK when the session ends: two of a token check's three round trips,
        and two of every search's. SQLite keeps its transaction: there BEGIN pins one
        snapshot for the whole read, and costs no round trip."""
        if self.is_sqlite:
            return self.engine
        return self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.engine)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading. Closing (not rolling back) detaches objects unexpired, so
        views may still read them; the pool rolls the connection back on return."""
        session = self._read()
        try:
            yield session
        finally:
            session.close()

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A plain connection for a one-statement read on a hot path (every API request's token
        check): there a Session cost more CPU than the statement it ran."""
        with self._reader.connect() as connection:
            yield connection

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed if the block returns, rolled back if it raises."""
        session = self._write()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
