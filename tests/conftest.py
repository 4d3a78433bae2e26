"""Shared fixtures: every database test runs on SQLite and on a real PostgreSQL server.

PostgreSQL: the suite starts a throwaway server of its own (tests/support/postgres_server.py:
its own data directory and port, trust auth on 127.0.0.1) the first time a test needs it, and
stops it at the end. ``NDR_TEST_DATABASE_URL`` (an admin URL such as
``postgresql://postgres@127.0.0.1:5432/postgres``) uses an existing server instead. Each test
gets a fresh database, created and dropped here. Under CI (CI=true) a PostgreSQL that cannot
start fails the run instead of skipping: the suite runs on both databases.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.support.postgres_server import PostgresServer, PostgresUnavailable


def _backends() -> list[str]:
    wanted = os.environ.get("NDR_TEST_DB", "sqlite,postgres").split(",")
    return [b.strip() for b in wanted if b.strip()]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_admin_dsn() -> Iterator[str]:
    """An admin URL of a PostgreSQL server: the configured one, else one started here."""
    configured = os.environ.get("NDR_TEST_DATABASE_URL") or os.environ.get("NDR_TEST_PG_ADMIN")
    if configured:
        try:
            import psycopg

            with psycopg.connect(configured, connect_timeout=5):
                pass
        except Exception as exc:
            _unavailable(f"NDR_TEST_DATABASE_URL={configured} is not reachable: {exc}")
        yield configured
        return
    try:
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        _unavailable(str(exc))
    try:
        yield server.admin_url
    finally:
        server.stop()


def create_postgres_database(admin_dsn: str) -> tuple[str, str]:
    """Create an empty database; return (sqlalchemy url, name)."""
    import psycopg

    name = f"ndr_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}", name


def drop_postgres_database(admin_dsn: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A URL of an empty database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    admin = request.getfixturevalue("postgres_admin_dsn")
    url, name = create_postgres_database(admin)
    try:
        yield url
    finally:
        drop_postgres_database(admin, name)


# ---------------------------------------------------------------- the whole registry


class RegistryHarness:
    """A migrated registry on one database, with helpers to make organisations and tokens."""

    def __init__(self, app, state) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.state = state
        self.client = app.test_client()

    def org(self, org_id: str, *, parent: str | None = None, name_zh: str | None = None,
            name_en: str | None = None) -> str:
        from registry.auth.principal import Principal
        from registry.organizations.actions import organization_create
        from registry.organizations.models import Role

        operator = Principal(id="test:operator", organization_id=None, role=Role.OPERATOR)
        body = {"id": org_id, "name_zh": name_zh or f"{org_id}部门",
                "name_en": name_en or f"{org_id} department"}
        if parent:
            body["parent"] = parent
        with self.state.db.write() as session:
            organization_create(session, operator, body)
        return org_id

    def token(self, org_id: str | None, role: str = "editor") -> str:
        from registry.auth.tokens import issue_token
        from registry.organizations.models import Role

        with self.state.db.write() as session:
            return issue_token(session, name="test", organization_id=org_id,
                               role=Role(role)).secret

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def build_registry(database_url: str, var_dir) -> RegistryHarness:  # type: ignore[no-untyped-def]
    from app import create_app
    from registry.bootstrap import build_state, ensure_signing_key
    from registry.config import Settings
    from registry.database import Database
    from registry.migrate import upgrade_database

    settings = Settings(var_dir=var_dir, database_url=database_url, run_background=False)
    ensure_signing_key(settings)
    db = Database(database_url)
    upgrade_database(db.engine)
    state = build_state(settings, database=db)
    app = create_app(settings, state=state, background=False)
    app.testing = True
    return RegistryHarness(app, state)


@pytest.fixture
def registry(database_url: str, tmp_path) -> Iterator[RegistryHarness]:  # type: ignore[no-untyped-def]
    harness = build_registry(database_url, tmp_path / "var")
    try:
        yield harness
    finally:
        harness.state.stop()
        harness.state.db.dispose()
