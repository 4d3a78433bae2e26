"""Fixtures for the importer tests: the real data.json corpus and an independent validator."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("NDR_DATAJSON_DIR")
              or REPO.parent / "shared" / "data" / "us-federal-datajson")
DATA = Path(__file__).resolve().parent / "data"

# Filled by the corpus test, printed at the end of the run (pytest_terminal_summary).
CORPUS_COUNTS: dict[str, tuple[int, int]] = {}


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"real data.json corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="session")
def reference_validator() -> Draft202012Validator:
    """Built here from the schema file, not taken from the importer, so the tests do not trust
    the code under test to validate itself."""
    schema = json.loads((REPO / "schemas" / "dataset.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


@pytest.fixture(scope="session")
def corpus_counts() -> dict[str, tuple[int, int]]:
    return CORPUS_COUNTS


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not CORPUS_COUNTS:
        return
    terminalreporter.section("data.json corpus: accepted / rejected")
    for name, (accepted, rejected) in sorted(CORPUS_COUNTS.items()):
        total = accepted + rejected
        terminalreporter.write_line(
            f"{name:15} {accepted:5} / {rejected:3}  ({accepted / total:.1%} accepted)"
        )
