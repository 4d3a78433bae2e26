"""The CKAN-compatible read API: CKAN's shapes, and a real CKAN client (ckanapi) against it."""

from __future__ import annotations

import threading

import pytest

from tests.catalogue.helpers import metadata


@pytest.fixture
def catalogue(registry):  # type: ignore[no-untyped-def]
    registry.org("mot", name_zh="交通运输部", name_en="Ministry of Transport")
    registry.org("mot-roads", parent="mot", name_zh="公路局", name_en="Highway Bureau")
    registry.org("moe", name_zh="教育部", name_en="Ministry of Education")
    roads = registry.auth(registry.token("mot-roads"))
    edu = registry.auth(registry.token("moe"))
    post = registry.client.post
    assert post("/api/v1/datasets", headers=roads, json={"slug": "road-traffic", "metadata":
                metadata()}).status_code == 201
    assert post("/api/v1/datasets", headers=roads, json={"slug": "bridge-inspections",
                "metadata": metadata(title={"zh": "桥梁检测报告", "en": "Bridge inspections"},
                                     keywords=["桥梁"])}).status_code == 201
    assert post("/api/v1/datasets", headers=edu, json={"slug": "school-enrolment", "metadata":
                metadata(title={"zh": "全国中小学招生统计", "en": "School enrolment"},
                         keywords=["教育"], themes=["EDUC"],
                         distributions=[{"access_url": "https://x.example/e.json",
                                         "format": "JSON"}])}).status_code == 201
    assert post("/api/v1/datasets", headers=edu, json={"slug": "internal-staffing",
                "visibility": "government", "metadata": metadata()}).status_code == 201
    return registry


def _ok(response) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["success"] is True and "help" in body
    return body["result"]


def test_package_search_shape_filters_and_facets(catalogue) -> None:  # type: ignore[no-untyped-def]
    get = catalogue.client.get
    everything = _ok(get("/api/3/action/package_search?rows=10"))
    assert everything["count"] == 3  # the government-only entry is not public
    names = {p["name"] for p in everything["results"]}
    assert names == {"road-traffic", "bridge-inspections", "school-enrolment"}
    road = next(p for p in everything["results"] if p["name"] == "road-traffic")
    assert road["resources"][0]["format"] == "CSV"
    assert road["resources"][0]["hash"] == "sha256:" + "a" * 64
    assert road["organization"]["name"] == "mot-roads" and road["private"] is False
    # Publisher filters include sub-organisations: mot covers mot-roads.
    by_org = _ok(get('/api/3/action/package_search?fq=organization:mot'
                     '&facet.field=["res_format","tags"]'))
    assert {p["name"] for p in by_org["results"]} == {"road-traffic", "bridge-inspections"}
    assert by_org["facets"]["res_format"] == {"CSV": 2}
    assert by_org["search_facets"]["tags"]["items"]
    zh = _ok(get("/api/3/action/package_search?q=桥梁"))
    assert [p["name"] for p in zh["results"]] == ["bridge-inspections"]
    page = [_ok(get(f"/api/3/action/package_search?rows=1&start={i}&sort=title_string asc"))
            ["results"][0]["name"] for i in range(3)]
    assert sorted(page) == sorted(names) and len(set(page)) == 3


def test_show_list_organizations_status(catalogue) -> None:  # type: ignore[no-untyped-def]
    get = catalogue.client.get
    shown = _ok(get("/api/3/action/package_show?id=school-enrolment"))
    assert shown["title"] == "全国中小学招生统计" and shown["groups"][0]["name"] == "EDUC"
    assert {e["key"] for e in shown["extras"]} >= {"title_en", "metadata_sha256", "log_index"}
    assert sorted(_ok(get("/api/3/action/package_list"))) == [
        "bridge-inspections", "road-traffic", "school-enrolment"]
    assert "mot-roads" in _ok(get("/api/3/action/organization_list"))
    org = _ok(get("/api/3/action/organization_show?id=mot-roads"))
    assert org["package_count"] == 2 and org["title"] == "公路局"
    assert _ok(get("/api/3/action/status_show"))["ckan_version"].startswith("2.")


def test_errors_use_ckans_shape(catalogue) -> None:  # type: ignore[no-untyped-def]
    missing = catalogue.client.get("/api/3/action/package_show?id=nope")
    assert missing.status_code == 404
    assert missing.get_json()["error"]["__type"] == "Not Found Error"
    secret = catalogue.client.get("/api/3/action/package_show?id=internal-staffing")
    assert secret.status_code == 404
    bad = catalogue.client.get("/api/3/action/package_search?rows=abc")
    assert bad.status_code == 409 and bad.get_json()["success"] is False
    unknown = catalogue.client.get("/api/3/action/package_search?fq=colour:red")
    assert unknown.status_code == 409


def test_a_real_ckan_client_reads_the_registry(catalogue) -> None:  # type: ignore[no-untyped-def]
    import ckanapi
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, catalogue.app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ckan = ckanapi.RemoteCKAN(f"http://127.0.0.1:{server.server_port}",
                                  user_agent="ndr-test")
        result = ckan.action.package_search(q="教育", rows=5)
        assert [p["name"] for p in result["results"]] == ["school-enrolment"]
        assert ckan.action.package_show(id="road-traffic")["num_resources"] == 1
        assert "moe" in ckan.action.organization_list()
        with pytest.raises(ckanapi.NotFound):
            ckan.action.package_show(id="does-not-exist")
    finally:
        server.shutdown()
