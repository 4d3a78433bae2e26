"""Fixtures for the portal's page tests: a registry loaded with the demo catalogue."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RegistryHarness, build_registry

TRANSLATIONS = Path(__file__).resolve().parents[2] / "registry" / "web" / "translations"


def compile_translations() -> None:
    """What `make install` does (`pybabel compile`), so the suite also runs without make."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with po.open("rb") as source:
                catalog = read_po(source)
            with mo.open("wb") as out:
                write_mo(out, catalog)


@pytest.fixture(scope="session", autouse=True)
def _translations() -> None:
    compile_translations()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryHarness]:
    """One SQLite registry with the demo catalogue, shared by read-only page tests."""
    from registry.demo import load_demo_catalogue

    root = tmp_path_factory.mktemp("demo")
    harness = build_registry(f"sqlite:///{root / 'registry.db'}", root / "var")
    load_demo_catalogue(harness.state)
    try:
        yield harness
    finally:
        harness.state.stop()
        harness.state.db.dispose()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def demo_password(harness: RegistryHarness, email: str) -> str:
    path = Path(harness.state.settings.var_dir) / "demo-credentials.txt"
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(email + "\t"):
            return line.split("\t", 1)[1]
    raise AssertionError(f"{email} is not in {path}")
