"""Our own JSON-lines format (fixture tests/importers/data/ours.jsonl, hand-written)."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.importers import ImportRecord, RejectedRecord, read_records


@pytest.fixture(scope="module")
def outcomes(data_dir: Path) -> list[ImportRecord | RejectedRecord]:
    return list(read_records(data_dir / "ours.jsonl", "jsonl"))


def test_valid_lines_pass_through_unchanged(outcomes: list[ImportRecord | RejectedRecord]) -> None:
    first, second = outcomes[0], outcomes[1]
    assert first == ImportRecord(
        "stat-001",
        "population-census-2020",
        {
            "title": {"zh": "2020年人口普查", "en": "Population census 2020"},
            "description": {"en": "Counts by district."},
            "distributions": [
                {
                    "access_url": "https://stats.example.gov/census.csv",
                    "format": "CSV",
                    "media_type": "text/csv",
                    "checksum": {
                        "algorithm": "sha256",
                        "value": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                    },
                }
            ],
        },
        "public",
        (),
    )
    assert isinstance(second, ImportRecord)
    assert (second.visibility, second.slug_hint) == ("government", None)
    assert second.publisher_path == ("Statistics Bureau", "Census Office")


def test_bad_json_line_is_rejected_with_its_line_number(
    outcomes: list[ImportRecord | RejectedRecord],
) -> None:
    assert outcomes[2] == RejectedRecord(
        3, None, ["/: not JSON: Expecting property name enclosed in double quotes (column 56)"]
    )


def test_invalid_metadata_reports_pointers_into_the_line(
    outcomes: list[ImportRecord | RejectedRecord],
) -> None:
    # Line 4 is blank and skipped; line 5 has an unknown field and a lower-case format.
    assert outcomes[3] == RejectedRecord(
        5,
        "stat-003",
        [
            "/metadata/colour: is not a known field",
            "/metadata/distributions/0/format: does not match the expected form "
            "(^[A-Z0-9][A-Z0-9.+\\-]{0,39}$)",
        ],
    )


def test_envelope_errors(outcomes: list[ImportRecord | RejectedRecord]) -> None:
    assert outcomes[4] == RejectedRecord(6, "stat-004", ["/visibility: is required"])
    assert outcomes[5] == RejectedRecord(
        7,
        "stat-005",
        ["/slug: must be lower-case a-z, 0-9 and '-', at most 120 characters"],
    )
    assert len(outcomes) == 6


def test_unknown_format_name(data_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown import format"):
        read_records(data_dir / "ours.jsonl", "csv")  # type: ignore[arg-type]
