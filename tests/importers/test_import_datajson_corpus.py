"""The data.json importer against ten real US federal agency catalogues (3,346 datasets).

Expected values below are written out by hand from reading the source files; each test also
checks that the source still says what the expectation assumes, so a changed corpus fails loudly
instead of making the test vacuous.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from registry.importers import ImportRecord, RejectedRecord, read_records

FILES = [
    "cms.json", "dhs.json", "dol.json", "energy.json", "fcc.json",
    "fda.json", "gsa.json", "opm.json", "treasury.json", "usaid.json",
]  # fmt: skip


def source_entry(path: Path, identifier: str) -> dict[str, Any]:
    """The raw data.json entry, read straight from the file, to check what the source said."""
    entries = json.loads(path.read_text(encoding="utf-8-sig"))["dataset"]
    return next(entry for entry in entries if entry["identifier"] == identifier)


def mapped(path: Path, identifier: str) -> ImportRecord:
    found = [
        outcome for outcome in read_records(path, "datajson") if outcome.external_id == identifier
    ]
    assert len(found) == 1, f"{identifier} not found exactly once in {path.name}"
    record = found[0]
    assert isinstance(record, ImportRecord), record
    return record


def distribution_by_title(record: ImportRecord, title: str) -> dict[str, Any]:
    return next(d for d in record.metadata["distributions"] if d.get("title") == title)


@pytest.mark.parametrize("name", FILES)
def test_every_real_file_maps_with_at_least_95_percent_valid(
    corpus: Path,
    reference_validator: Draft202012Validator,
    corpus_counts: dict[str, tuple[int, int]],
    name: str,
) -> None:
    outcomes = list(read_records(corpus / name, "datajson"))
    accepted = [o for o in outcomes if isinstance(o, ImportRecord)]
    rejected = [o for o in outcomes if isinstance(o, RejectedRecord)]
    corpus_counts[name] = (len(accepted), len(rejected))

    assert len(accepted) + len(rejected) == len(outcomes) > 0
    assert len(accepted) >= 0.95 * len(outcomes)
    for record in accepted:
        errors = [e.message for e in reference_validator.iter_errors(record.metadata)]
        assert errors == [], (record.external_id, errors)
        assert record.visibility in ("public", "government")
        assert record.slug_hint is None or len(record.slug_hint) <= 120
    for rejection in rejected:
        assert rejection.reasons, rejection
        assert all(reason.startswith("/") and ": " in reason for reason in rejection.reasons)


def test_file_positions_count_datasets_from_one(corpus: Path) -> None:
    positions = [o.position for o in read_records(corpus / "fcc.json", "datajson")
                 if isinstance(o, RejectedRecord)]  # fmt: skip
    # fcc.json datasets 14 and 49 have an empty description; the schema requires one.
    assert positions == [14, 49]
    assert (
        source_entry(corpus / "fcc.json", "https://opendata.fcc.gov/api/views/a6ec-cry4")[
            "description"
        ].strip()
        == ""
    )


def test_empty_description_is_rejected_with_its_pointer(corpus: Path) -> None:
    rejected = [o for o in read_records(corpus / "fcc.json", "datajson")
                if isinstance(o, RejectedRecord)]  # fmt: skip
    assert rejected[0].external_id == "https://opendata.fcc.gov/api/views/a6ec-cry4"
    assert rejected[0].reasons == ["/description: is required"]


def test_format_word_and_media_type_mess(corpus: Path) -> None:
    """usaid 854d1b81…: format "csv" (lower-case) and "EXCEL" (names no file type) with
    mediaType application/vnd.ms-excel → XLS, from the declared media type."""
    path = corpus / "usaid.json"
    source = source_entry(path, "854d1b81-a517-4966-957c-5428fb4c1821")
    assert [(d["format"], d["mediaType"]) for d in source["distribution"]] == [
        ("csv", "text/csv"),
        ("EXCEL", "application/vnd.ms-excel"),
    ]
    record = mapped(path, "854d1b81-a517-4966-957c-5428fb4c1821")
    assert [(d["format"], d["media_type"]) for d in record.metadata["distributions"]] == [
        ("CSV", "text/csv"),
        ("XLS", "application/vnd.ms-excel"),
    ]
    first = record.metadata["distributions"][0]
    # Only a downloadURL in the source: it is also the access URL.
    assert (
        first["access_url"]
        == first["download_url"]
        == ("http://www.usaid.gov/opengov/developer/datasets/DCA_Dataset_Loan_Transactions.csv")
    )


def test_format_given_as_a_media_type(corpus: Path) -> None:
    path = corpus / "fda.json"
    source = source_entry(path, "c447002d-51df-46d9-a105-dda94dfd6083")
    assert source["distribution"][0]["format"] == "text/csv"
    distribution = mapped(path, "c447002d-51df-46d9-a105-dda94dfd6083").metadata["distributions"][0]
    assert (distribution["format"], distribution["media_type"]) == ("CSV", "text/csv")


def test_zipped_csv_is_a_zip_and_missing_media_type_comes_from_the_format(corpus: Path) -> None:
    path = corpus / "usaid.json"
    zipped = mapped(path, "8357a7f6-2514-42ea-8069-ae260c9a4d98").metadata["distributions"][0]
    assert (
        source_entry(path, "8357a7f6-2514-42ea-8069-ae260c9a4d98")["distribution"][0]["format"]
        == "Zipped CSV"
    )
    assert (zipped["format"], zipped["media_type"]) == ("ZIP", "application/zip")

    gsa = corpus / "gsa.json"
    source = source_entry(gsa, "GSA - 139297")
    no_media = next(d for d in source["distribution"] if d["title"] == "FAS IL 2014")
    assert "mediaType" not in no_media and no_media["format"] == "xlsx"
    record = mapped(gsa, "GSA - 139297")
    xlsx = distribution_by_title(record, "FAS IL 2014")
    assert xlsx["format"] == "XLSX"
    assert xlsx["media_type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert "download_url" not in xlsx  # the source gave only an accessURL
    assert record.metadata["language"] == ["en-US"]  # source: ["en-us"]
    assert record.metadata["update_cycle"] == "annual"  # source: R/P1Y
    assert record.metadata["spatial"] == {"name": "United States"}


def test_meaningless_media_type_is_dropped_not_upper_cased(corpus: Path) -> None:
    path = corpus / "fda.json"
    distribution = mapped(path, "6e72c239-0510-49f4-8404-d3d7d50351ec").metadata["distributions"][0]
    # Source: format and mediaType both "application/unknown"; the .htm URL gives HTML.
    assert distribution["format"] == "HTML"
    assert distribution["media_type"] == "text/html"


def test_nested_publishers_outermost_first(corpus: Path) -> None:
    path = corpus / "treasury.json"
    record = mapped(path, "015-BFS-2014Q4-004")
    assert record.publisher_path == (
        "Department of the Treasury",
        "Fiscal Service",
        "Bureau of the Fiscal Service",
    )
    assert record.metadata["publisher"] == {"name": {"en": "Bureau of the Fiscal Service"}}
    # "TTB" under "TTB" under the Department: one organisation named twice, not two.
    assert mapped(path, "015-TTB-1").publisher_path == ("Department of the Treasury", "TTB")


def test_access_level_sets_visibility_and_access_rights(corpus: Path) -> None:
    path = corpus / "dhs.json"
    assert source_entry(path, "SDD-78")["accessLevel"] == "restricted public"
    restricted = mapped(path, "SDD-78")
    assert (restricted.visibility, restricted.metadata["access_rights"]) == (
        "government",
        "restricted",
    )
    assert restricted.metadata["modified"] == "2022-03-31T12:47:43-04:00"
    closed = mapped(path, "MGMT-OCIO-Mobius-10")
    assert (closed.visibility, closed.metadata["access_rights"]) == ("government", "non-public")


def test_repeating_interval_in_modified_becomes_update_cycle(corpus: Path) -> None:
    path = corpus / "fda.json"
    assert source_entry(path, "2003711a-3d1c-4a0c-9928-09de5c42e2cf")["modified"] == "R/P1Y"
    record = mapped(path, "2003711a-3d1c-4a0c-9928-09de5c42e2cf")
    assert "modified" not in record.metadata
    assert record.metadata["update_cycle"] == "annual"


def test_year_interval_widens_to_whole_years(corpus: Path) -> None:
    path = corpus / "energy.json"
    assert source_entry(path, "DOE-019-4381227569")["temporal"] == "1994/2014"
    record = mapped(path, "DOE-019-4381227569")
    assert record.metadata["temporal"] == {"start": "1994-01-01", "end": "2014-12-31"}
    assert record.metadata["update_cycle"] == "daily"  # source accrualPeriodicity R/P1D


def test_bbox_spatial_dropped_and_continuous_update_is_realtime(corpus: Path) -> None:
    path = corpus / "energy.json"
    source = source_entry(path, "DOE-LM-0000001")
    assert source["spatial"] == "-165.765589,18.213480,179.179778,68.106924"
    assert source["accrualPeriodicity"] == "R/PT1S"
    record = mapped(path, "DOE-LM-0000001")
    assert "spatial" not in record.metadata
    assert record.metadata["update_cycle"] == "realtime"
    # Four source distributions; the last has no URL at all and is dropped.
    assert [d.get("format") for d in record.metadata["distributions"]] == ["API", "HTML", "JSON"]
    assert record.metadata["modified"] == "2024-01-11T13:53:57.703Z"


def test_over_long_keyword_dropped_others_kept(corpus: Path) -> None:
    path = corpus / "treasury.json"
    assert len(source_entry(path, "015-DO-124")["keyword"]) == 6
    assert mapped(path, "015-DO-124").metadata["keywords"] == [
        "TARP", "CPP", "AIG", "AIFP", "PPIP",
    ]  # fmt: skip


def test_more_than_100_keywords_are_cut_to_the_schema_limit(corpus: Path) -> None:
    path = corpus / "energy.json"
    assert len(source_entry(path, "DOE-019-1587334455")["keyword"]) == 141
    assert len(mapped(path, "DOE-019-1587334455").metadata["keywords"]) == 100


def test_contact_point_strips_mailto(corpus: Path) -> None:
    path = corpus / "treasury.json"
    source = source_entry(path, "015-BEP-001")
    assert source["contactPoint"]["hasEmail"] == "mailto:moneyfactory.info@bep.gov"
    assert mapped(path, "015-BEP-001").metadata["contact_point"] == {
        "name": "External Relations",
        "email": "moneyfactory.info@bep.gov",
    }
