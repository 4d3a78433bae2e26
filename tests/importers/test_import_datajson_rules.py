"""data.json mapping rules on small fixture files (tests/importers/data/datajson_*.json).

datajson_bom.json starts with a UTF-8 byte-order mark; its first dataset is copied verbatim from
the real FDA catalogue (/work/shared/data/us-federal-datajson/fda.json), the second is
hand-written to carry the kinds of mess found across the real corpus.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from registry.importers import ImportRecord, RejectedRecord, read_records
from registry.importers.datajson import map_dataset


@pytest.fixture(scope="module")
def bom_outcomes(data_dir: Path) -> list[ImportRecord | RejectedRecord]:
    return list(read_records(data_dir / "datajson_bom.json", "datajson"))


@pytest.fixture(scope="module")
def messy(bom_outcomes: list[ImportRecord | RejectedRecord]) -> ImportRecord:
    record = bom_outcomes[1]
    assert isinstance(record, ImportRecord), record
    return record


def test_bom_file_is_read(data_dir: Path, bom_outcomes: list[Any]) -> None:
    assert (data_dir / "datajson_bom.json").read_bytes()[:3] == b"\xef\xbb\xbf"
    assert [o.external_id for o in bom_outcomes] == [
        "2003711a-3d1c-4a0c-9928-09de5c42e2cf",
        "TEST-MESSY-1",
    ]
    assert all(isinstance(o, ImportRecord) for o in bom_outcomes)


def test_copied_fda_entry(bom_outcomes: list[Any]) -> None:
    fda = bom_outcomes[0]
    assert fda.publisher_path == ("U.S. Food and Drug Administration", "Office of the Commissioner")
    assert fda.slug_hint == "medwatch-safety-alerts-for-human-medical-products"
    assert fda.metadata["contact_point"] == {"name": "openFDA", "email": "open@fda.hhs.gov"}


def test_keywords_cleaned(messy: ImportRecord) -> None:
    # Source: ["wind", "", "  ", "solar", "wind", "x"*101, " grid "]
    assert messy.metadata["keywords"] == ["wind", "solar", "grid"]


def test_dates_and_cycles(messy: ImportRecord) -> None:
    assert "modified" not in messy.metadata  # source "R/P1W"
    assert messy.metadata["update_cycle"] == "weekly"
    assert "issued" not in messy.metadata  # source "2015": a bare year is not a date
    assert messy.metadata["temporal"] == {"start": "2015-01-01", "end": "2016-06-30"}


def test_themes_languages_spatial(messy: ImportRecord) -> None:
    assert messy.metadata["themes"] == ["ENER", "TRAN"]  # "geospatial" is not clear: dropped
    assert messy.metadata["language"] == ["en-US", "es"]
    assert messy.metadata["spatial"] == {"uri": "http://sws.geonames.org/6252001/"}


def test_links(messy: ImportRecord) -> None:
    assert "landing_page" not in messy.metadata  # source "not a url"
    assert messy.metadata["conforms_to"] == [
        "https://example.gov/standards/stations-v2",
        "https://example.gov/dictionary.json",
    ]
    assert messy.publisher_path == ("Department of Energy", "Energy Programs", "Office of Wind")
    assert messy.slug_hint == "reseau-de-stations-wind-solar-output"


def test_distribution_formats(messy: ImportRecord) -> None:
    assert messy.metadata["distributions"] == [
        {
            "title": "Stations",
            "access_url": "https://example.gov/stations.geojson",
            "download_url": "https://example.gov/stations.geojson",
            "format": "GEOJSON",
            "media_type": "application/geo+json",
        },
        {"access_url": "https://example.gov/output", "format": "CSV", "media_type": "text/csv"},
    ]  # the third source distribution has no URL


def test_bare_list_and_bad_entries(data_dir: Path) -> None:
    outcomes = list(read_records(data_dir / "datajson_bare_list.json", "datajson"))
    assert isinstance(outcomes[0], ImportRecord)
    assert outcomes[1] == RejectedRecord(2, None, ["/identifier: is required"])
    assert outcomes[2] == RejectedRecord(3, None, ["/: a dataset must be a JSON object"])


def test_over_long_title_is_rejected_with_pointer() -> None:
    entry = {"identifier": "x", "title": "t" * 501, "description": "d", "accessLevel": "public"}
    outcome = map_dataset(7, entry)
    assert isinstance(outcome, RejectedRecord)
    assert outcome.position == 7
    assert outcome.reasons == [f"/title/en: {'t' * 501!r} is too long"]


def test_unknown_access_level_is_not_public() -> None:
    entry = {"identifier": "x", "title": "t", "description": "d", "accessLevel": "Public-ish"}
    outcome = map_dataset(1, entry)
    assert isinstance(outcome, ImportRecord)
    assert outcome.visibility == "government"
    assert "access_rights" not in outcome.metadata


def test_not_a_catalogue_raises(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"datasets": []}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"not a data\.json catalogue"):
        list(read_records(path, "datajson"))


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=30),
    st.sampled_from(["R/P1D", "2020-13-45", "mailto:", "csv", "text/csv", "http://x y"]),
    st.sampled_from(["1999/2000", "-1,2,3,4", "en_us", "ENERGY"]),
)  # fmt: skip
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
_FIELDS = [
    "title", "description", "keyword", "modified", "issued", "temporal", "spatial", "theme",
    "language", "license", "landingPage", "describedBy", "conformsTo", "accrualPeriodicity",
    "contactPoint", "publisher", "distribution", "accessLevel",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    entry=st.fixed_dictionaries(
        {"identifier": st.text(min_size=1, max_size=20)},
        optional={name: _values for name in _FIELDS},
    )
)
def test_any_entry_maps_without_exception_and_accepted_ones_validate(
    entry: dict[str, Any], reference_validator: Draft202012Validator
) -> None:
    outcome = map_dataset(1, entry)
    if isinstance(outcome, ImportRecord):
        assert list(reference_validator.iter_errors(outcome.metadata)) == []
    else:
        assert outcome.reasons
