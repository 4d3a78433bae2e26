"""F8: every secret file is refused at start when group or others can read it, with a message
naming the file. F16: the SQLite database and its -wal/-shm files are 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from anchoring.keys import KeyFileError
from anchoring.private_files import SecretFileError, create_or_load
from tests.conftest import build_registry


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch):  # type: ignore[no-untyped-def]
    """A registry started once on SQLite (so every lazily made secret exists), then stopped."""
    var = tmp_path / "var"
    monkeypatch.setenv("NDR_ANCHOR_JOURNAL_KEY_FILE", str(var / "anchor-journal.key"))
    old = os.umask(0o022)  # the usual umask, under which files were created 0644 before
    harness = build_registry(f"sqlite:///{var / 'registry.db'}", var)
    try:
        create_or_load(var / "anchor-journal.key", lambda: b"journal key\n")
        harness.client.get("/signin")
        harness.org("mot")  # something in the WAL
        yield harness, var
    finally:
        os.umask(old)
        harness.state.stop()
        harness.state.db.dispose()


SECRETS = ["session-secret.key", "log-signing.key", "anchor-journal.key", "evm-submitter.key"]


@pytest.mark.parametrize("name", SECRETS)
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_readable_secret_file_stops_the_start(fresh, monkeypatch, name: str,  # type: ignore[no-untyped-def]
                                                mode: int) -> None:
    harness, var = fresh
    secret = var / name
    if name == "evm-submitter.key":
        secret.write_text("0x" + "11" * 32 + "\n")
        monkeypatch.setenv("NDR_EVM_KEY_FILE", str(secret))
    os.chmod(secret, mode)
    with pytest.raises((SecretFileError, KeyFileError)) as refused:
        build_registry(harness.state.settings.database_url, var)
    message = str(refused.value)
    assert str(secret) in message and f"chmod 600 {secret}" in message
    os.chmod(secret, 0o600)
    again = build_registry(harness.state.settings.database_url, var)  # fixed: starts again
    again.state.db.dispose()


def test_secret_files_are_created_0600(fresh) -> None:  # type: ignore[no-untyped-def]
    _harness, var = fresh
    for name in ("session-secret.key", "log-signing.key", "anchor-journal.key"):
        assert _mode(var / name) == 0o600, name


def test_database_files_are_0600(fresh) -> None:  # type: ignore[no-untyped-def]
    _harness, var = fresh
    files = [var / "registry.db", var / "registry.db-wal", var / "registry.db-shm"]
    assert all(f.exists() for f in files), list(var.iterdir())
    assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}


def test_database_files_left_readable_by_an_older_release_are_tightened(fresh) -> None:  # type: ignore[no-untyped-def]
    harness, var = fresh
    for suffix in ("", "-wal", "-shm"):
        os.chmod(var / f"registry.db{suffix}", 0o644)
    again = build_registry(harness.state.settings.database_url, var)
    try:
        for suffix in ("", "-wal", "-shm"):
            assert _mode(var / f"registry.db{suffix}") == 0o600
    finally:
        again.state.db.dispose()


def test_ndr_init_creates_the_database_0600(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from registry.cli import cli

    var = tmp_path / "var"
    monkeypatch.setenv("NDR_VAR_DIR", str(var))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    old = os.umask(0o022)
    try:
        result = CliRunner().invoke(cli, ["init"])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert _mode(var / "registry.db") == 0o600
    assert _mode(var / "log-signing.key") == 0o600
