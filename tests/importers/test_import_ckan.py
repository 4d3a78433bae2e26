"""CKAN API output in its four shapes (hand-written fixtures modelled on CKAN 2.10 responses)."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.importers import ImportRecord, RejectedRecord, read_records

AIR = "6f2c9a52-7c1e-4d0a-9a8e-2b4a3c1d9e01"
ENTERPRISES = "a1b2c3d4-0000-4000-8000-000000000002"


def ids(path: Path) -> list[tuple[str, str | None]]:
    return [(type(outcome).__name__, outcome.external_id) for outcome in read_records(path, "ckan")]


def test_package_search_response(data_dir: Path) -> None:
    assert ids(data_dir / "ckan_package_search.json") == [
        ("ImportRecord", AIR),
        ("ImportRecord", ENTERPRISES),
        ("RejectedRecord", "a1b2c3d4-0000-4000-8000-000000000003"),
    ]


def test_package_show_list_and_json_lines(data_dir: Path) -> None:
    assert ids(data_dir / "ckan_package_show.json") == [("ImportRecord", AIR)]
    assert ids(data_dir / "ckan_package_list.json") == [
        ("ImportRecord", ENTERPRISES),
        ("ImportRecord", AIR),
    ]
    outcomes = list(read_records(data_dir / "ckan_packages.jsonl", "ckan"))
    assert [o.external_id for o in outcomes] == [AIR, None, ENTERPRISES]
    broken = outcomes[1]
    assert isinstance(broken, RejectedRecord)
    assert broken.position == 2
    assert broken.reasons == ["/: line 2 is not JSON: Expecting value"]


def air(data_dir: Path) -> ImportRecord:
    record = next(iter(read_records(data_dir / "ckan_package_show.json", "ckan")))
    assert isinstance(record, ImportRecord)
    return record


def test_package_fields(data_dir: Path) -> None:
    record = air(data_dir)
    metadata = record.metadata
    assert record.slug_hint == "air-quality-daily-2023"  # CKAN name air_quality_daily_2023
    assert record.visibility == "public"
    assert record.publisher_path == ("Environment Agency",)
    assert metadata["title"] == {"en": "Daily air quality readings 2023"}
    assert metadata["keywords"] == ["air quality", "PM2.5"]  # duplicate and empty tag dropped
    assert metadata["license"] == "http://www.opendefinition.org/licenses/cc-by"
    assert metadata["contact_point"] == {
        "name": "Air Quality Team",
        "email": "air@environment.example.gov",
    }
    assert metadata["issued"] == "2023-02-01T09:15:22.123456"
    assert metadata["modified"] == "2024-01-05T17:02:11.654321"
    assert metadata["landing_page"] == "https://environment.example.gov/air-quality"


def test_extras(data_dir: Path) -> None:
    metadata = air(data_dir).metadata
    assert metadata["themes"] == ["ENVI", "HEAL"]
    assert metadata["update_cycle"] == "daily"
    assert metadata["spatial"] == {"name": "Beijing"}  # GeoJSON `spatial` has no place here
    assert metadata["temporal"] == {"start": "2023-01-01", "end": "2023-12-31"}
    assert metadata["language"] == ["en", "zh-Hans"]


def test_resources(data_dir: Path) -> None:
    first, api = air(data_dir).metadata["distributions"]  # the empty-URL resource is dropped
    assert first == {
        "title": "Readings (CSV)",
        "description": "All stations",
        "access_url": "https://environment.example.gov/dataset/air/resource/r1/download/readings.csv",
        "download_url": "https://environment.example.gov/dataset/air/resource/r1/download/readings.csv",
        "format": "CSV",
        "media_type": "text/csv",
        "byte_size": 184320,
        "checksum": {
            "algorithm": "sha256",
            "value": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        },
        "issued": "2023-02-01T09:20:00.000000",
        "modified": "2024-01-05T17:00:00",
    }
    assert "checksum" not in api  # the source hash is an MD5
    assert (api["format"], api["media_type"]) == ("API", "application/json")


def test_private_chinese_package(data_dir: Path) -> None:
    record = next(iter(read_records(data_dir / "ckan_package_list.json", "ckan")))
    assert isinstance(record, ImportRecord)
    assert record.visibility == "government"
    assert record.metadata["title"] == {"zh": "企业登记信息"}
    assert record.metadata["access_rights"] == "non-public"
    assert record.metadata["update_cycle"] == "monthly"
    assert "license" not in record.metadata  # license_id "notspecified"
    assert record.metadata["distributions"][0]["format"] == "XLSX"  # from the mimetype


def test_failed_api_response_and_broken_document_raise(tmp_path: Path) -> None:
    failed = tmp_path / "failed.json"
    failed.write_text('{"success": false, "error": {"message": "Not found"}}', encoding="utf-8")
    with pytest.raises(ValueError, match="failed CKAN API response"):
        list(read_records(failed, "ckan"))
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "result": {\n    "results": [\n', encoding="utf-8")
    with pytest.raises(ValueError):  # json.JSONDecodeError is a ValueError
        list(read_records(broken, "ckan"))
