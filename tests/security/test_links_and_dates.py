"""F11: script and data URLs are refused in every URL field, and never leave the registry as
links (pages, CKAN, DCAT, schema.org), not even from an entry stored before the rule.
F17: dates that are not on the calendar (year 0000, 30 February) are refused at validation, and
the DCAT export never logs rdflib tracebacks."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

import pytest
from sqlalchemy import update

from tests.catalogue.helpers import counts, metadata

HOSTILE_URLS = ["javascript:alert(1)", "JaVaScRiPt:alert(document.cookie)",
                "vbscript:msgbox(1)", "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
                "javascript://example.gov.cn/%0Aalert(1)", "file:///etc/passwd",
                "http:/no-authority", "//protocol-relative.example/x"]
ALLOWED_URLS = ["https://data.example.gov.cn/a?b=c#d", "HTTP://EXAMPLE.GOV.CN/", "ftp://ftp.example.cn/pub"]


def _set(document: dict[str, Any], pointer: str, value: Any) -> None:
    parts = pointer.strip("/").split("/")
    target: Any = document
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
    last = parts[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value


URL_FIELDS = ["/landing_page", "/publisher/homepage", "/contact_point/url", "/spatial/uri",
              "/conforms_to/0", "/distributions/0/access_url", "/distributions/0/download_url"]


def _with(pointer: str, value: Any) -> dict[str, Any]:
    document = metadata(conforms_to=["https://std.example.cn/1"], spatial={"name": "全国"})
    _set(document, pointer, value)
    return document


@pytest.fixture
def editor(registry):  # type: ignore[no-untyped-def]
    registry.org("transport")
    return registry.auth(registry.token("transport", "editor"))


@pytest.mark.parametrize("pointer", URL_FIELDS)
def test_every_url_field_refuses_script_and_data_urls(registry, editor, pointer: str) -> None:  # type: ignore[no-untyped-def]
    before = counts(registry)
    for url in HOSTILE_URLS:
        response = registry.client.post("/api/v1/datasets", json={"metadata": _with(pointer, url)},
                                        headers=editor)
        assert response.status_code == 422, (pointer, url, response.get_data(as_text=True))
        errors = response.get_json()["errors"]
        assert [e["pointer"] for e in errors] == ["/metadata" + pointer], errors
        assert "http" in errors[0]["detail"] and "javascript" in errors[0]["detail"]
        assert "[A-Za-z" not in errors[0]["detail"]  # words, not a regex
    assert counts(registry) == before
    for url in ALLOWED_URLS:
        response = registry.client.post("/api/v1/datasets", json={"metadata": _with(pointer, url)},
                                        headers=editor)
        assert response.status_code == 201, (pointer, url, response.get_data(as_text=True))


def test_patch_cannot_sneak_a_script_url_in(registry, editor) -> None:  # type: ignore[no-untyped-def]
    created = registry.client.post("/api/v1/datasets", json={"metadata": metadata()},
                                   headers=editor)
    dataset = created.get_json()
    response = registry.client.patch(
        f"/api/v1/datasets/{dataset['id']}",
        json={"metadata": {"landing_page": "javascript:alert(1)"}},
        headers=editor | {"If-Match": created.headers["ETag"]},
        content_type="application/merge-patch+json")
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.get_json()["errors"][0]["pointer"] == "/metadata/landing_page"


def test_mailto_only_where_it_makes_sense(registry, editor) -> None:  # type: ignore[no-untyped-def]
    ok = registry.client.post("/api/v1/datasets", json={"metadata": _with(
        "/contact_point/url", "mailto:data@example.gov.cn")}, headers=editor)
    assert ok.status_code == 201, ok.get_data(as_text=True)
    refused = registry.client.post("/api/v1/datasets", json={"metadata": _with(
        "/landing_page", "mailto:data@example.gov.cn")}, headers=editor)
    assert refused.status_code == 422


def _legacy_entry_with_script_links(registry, editor) -> str:  # type: ignore[no-untyped-def]
    """An entry as it could have been stored before the rule: the stored metadata carries
    script URLs (written straight into the database, as an old release would have)."""
    from registry.datasets.models import DatasetVersion

    created = registry.client.post("/api/v1/datasets", json={"metadata": metadata(
        landing_page="https://ok.example.cn/", conforms_to=["https://std.example.cn/"],
        spatial={"name": "全国", "uri": "https://geo.example.cn/1"})}, headers=editor)
    assert created.status_code == 201
    dataset_id = created.get_json()["id"]
    legacy = copy.deepcopy(metadata())
    legacy["landing_page"] = "javascript:alert('landing')"
    legacy["conforms_to"] = ["javascript:alert('standard')"]
    legacy["spatial"] = {"name": "全国", "uri": "data:text/html,<script>alert(1)</script>"}
    legacy["license"] = "javascript:alert('license')"
    legacy["distributions"][0]["access_url"] = "javascript:alert('access')"
    legacy["distributions"][0]["download_url"] = "vbscript:msgbox('download')"
    import json
    with registry.state.db.write() as session:
        session.execute(update(DatasetVersion).where(DatasetVersion.dataset_id == dataset_id)
                        .values(metadata_json=json.dumps(legacy, ensure_ascii=False)))
    return dataset_id


SCRIPTY = re.compile(r"(javascript|vbscript|data):", re.IGNORECASE)


def test_stored_script_urls_never_leave_as_links(registry, editor) -> None:  # type: ignore[no-untyped-def]
    dataset_id = _legacy_entry_with_script_links(registry, editor)
    page = registry.client.get(f"/datasets/{dataset_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert hrefs and not [h for h in hrefs if SCRIPTY.search(h)], hrefs
    assert "javascript:alert(&#39;landing&#39;)" in html  # still shown, as text
    for json_ld in re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.S):
        after = json_ld.split("contentUrl")[1][:60] if "contentUrl" in json_ld else ""
        assert not SCRIPTY.search(after)

    package = registry.client.get("/api/3/action/package_show", query_string={"id": dataset_id})
    result = package.get_json()["result"]
    assert not SCRIPTY.search(result["url"])
    assert all(not SCRIPTY.search(r["url"] or "") for r in result["resources"])

    for fmt in ("ttl", "jsonld"):
        rdf = registry.client.get(f"/api/v1/datasets/{dataset_id}/dcat",
                                  query_string={"format": fmt})
        assert rdf.status_code == 200
        assert not SCRIPTY.search(rdf.get_data(as_text=True)), fmt


BAD_DATES = [("/issued", "0000-01-01", "0000"), ("/modified", "0000-12-31T10:00:00Z", "0000"),
             ("/issued", "2023-02-30", "day"), ("/temporal/start", "0000-01-01", "0000"),
             ("/temporal/end", "2021-04-31", "day"),
             ("/distributions/0/issued", "0000-06-01", "0000"),
             ("/distributions/0/modified", "2024-02-30T12:00", "day"),
             ("/modified", "0001-01-01T00:30:00+01:00", "year")]


@pytest.mark.parametrize(("pointer", "value", "word"), BAD_DATES)
def test_dates_off_the_calendar_are_refused(registry, editor, pointer: str, value: str,  # type: ignore[no-untyped-def]
                                            word: str) -> None:
    before = counts(registry)
    response = registry.client.post("/api/v1/datasets", json={"metadata": _with(pointer, value)},
                                    headers=editor)
    assert response.status_code == 422, response.get_data(as_text=True)
    errors = response.get_json()["errors"]
    assert [e["pointer"] for e in errors] == ["/metadata" + pointer]
    assert word in errors[0]["detail"] and "\\d" not in errors[0]["detail"]
    assert counts(registry) == before


def test_real_dates_at_the_edges_are_accepted(registry, editor) -> None:  # type: ignore[no-untyped-def]
    for pointer, value in [("/issued", "0001-01-01"), ("/issued", "9999-12-31"),
                           ("/modified", "2024-02-29T23:59:59.123456789+08:00"),
                           ("/temporal/start", "1949-10-01")]:
        response = registry.client.post("/api/v1/datasets",
                                        json={"metadata": _with(pointer, value)}, headers=editor)
        assert response.status_code == 201, (value, response.get_data(as_text=True))


def test_dcat_export_of_a_stored_year_zero_logs_no_traceback(registry, editor, caplog) -> None:  # type: ignore[no-untyped-def]
    import json

    from registry.datasets.models import DatasetVersion

    created = registry.client.post("/api/v1/datasets", json={"metadata": metadata()},
                                   headers=editor)
    dataset_id = created.get_json()["id"]
    legacy = metadata(issued="0000-01-01", modified="2023-02-30",
                      temporal={"start": "0000-01-01", "end": "2024-02-30"})
    with registry.state.db.write() as session:
        session.execute(update(DatasetVersion).where(DatasetVersion.dataset_id == dataset_id)
                        .values(metadata_json=json.dumps(legacy, ensure_ascii=False)))
    caplog.set_level(logging.DEBUG)
    for path in (f"/api/v1/datasets/{dataset_id}/dcat", "/api/v1/catalog"):
        for fmt in ("ttl", "jsonld"):
            response = registry.client.get(path, query_string={"format": fmt})
            assert response.status_code == 200
            assert "0000-01-01" in response.get_data(as_text=True)  # kept, as plain text
    noisy = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()
             or "Failed to convert" in r.getMessage()]
    assert noisy == []
