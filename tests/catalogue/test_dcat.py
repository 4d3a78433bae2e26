"""The DCAT-AP 3 export conforms to SEMIC's official DCAT-AP 3.0.1 SHACL shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
from rdflib import Graph

from tests.catalogue.helpers import metadata

SHAPES = Path(__file__).resolve().parents[3] / "shared" / "standards" / "dcat-ap-3.0.1"


def _shapes() -> Graph:
    if not SHAPES.exists():
        pytest.skip(f"DCAT-AP shapes not found at {SHAPES}")
    graph = Graph()
    for name in ("shapes.ttl", "range.ttl"):
        graph.parse(SHAPES / name, format="turtle")
    return graph


def test_dataset_and_catalogue_exports_conform(registry) -> None:  # type: ignore[no-untyped-def]
    from pyshacl import validate

    registry.org("mot", name_zh="交通运输部", name_en="Ministry of Transport")
    editor = registry.auth(registry.token("mot"))
    full = metadata(language=["zh", "en"], access_rights="public",
                    license="https://creativecommons.org/licenses/by/4.0/",
                    contact_point={"name": "数据处", "email": "data@mot.example.gov.cn"},
                    spatial={"name": "北京市", "code": "110000"},
                    temporal={"start": "2020-01-01", "end": "2024-12-31"},
                    conforms_to=["https://example.gov.cn/standards/traffic"],
                    landing_page="https://data.example.gov.cn/traffic",
                    classification={"category": "交通运输", "item": "公路"})
    for slug, body in (("full", full), ("minimal", {"title": {"en": "Minimal"},
                                                     "description": {"en": "Only required"}})):
        r = registry.client.post("/api/v1/datasets", json={"slug": slug, "metadata": body},
                                 headers=editor)
        assert r.status_code == 201, r.get_json()

    shapes = _shapes()
    for url in ("/api/v1/datasets/full/dcat?format=ttl", "/api/v1/catalog?format=ttl"):
        response = registry.client.get(url)
        assert response.status_code == 200 and response.mimetype == "text/turtle"
        data = Graph().parse(data=response.get_data(as_text=True), format="turtle")
        conforms, _, report = validate(data, shacl_graph=shapes, inference="none")
        assert conforms, report
    jsonld = registry.client.get("/api/v1/datasets/full/dcat")
    assert jsonld.mimetype == "application/ld+json"
    graph = Graph().parse(data=jsonld.get_data(as_text=True), format="json-ld")
    titles = {str(o) for o in graph.objects(predicate=None) if str(o) == "全国公路交通流量统计"}
    assert titles


def test_a_broken_export_is_caught_by_the_shapes() -> None:
    """The validation above can fail: a dataset without a description violates the shapes."""
    from pyshacl import validate

    data = Graph().parse(format="turtle", data="""
        @prefix dcat: <http://www.w3.org/ns/dcat#> . @prefix dct: <http://purl.org/dc/terms/> .
        <https://x.example/d> a dcat:Dataset ; dct:title "No description" .""")
    conforms, _, _ = validate(data, shacl_graph=_shapes(), inference="none")
    assert not conforms


def test_urls_with_characters_rdf_forbids_still_serialise(registry) -> None:  # type: ignore[no-untyped-def]
    """Found by schemathesis: the schema lets a URL hold `<` or `"`; the export must not 500."""
    registry.org("mot")
    editor = registry.auth(registry.token("mot"))
    odd = metadata(landing_page='https://x.example/a<b>"c"{d}',
                   distributions=[{"access_url": "ftp://x.example/a|b^c`d\\e", "format": "CSV"}])
    assert registry.client.post("/api/v1/datasets", json={"slug": "odd", "metadata": odd},
                                headers=editor).status_code == 201
    for fmt in ("ttl", "jsonld"):
        r = registry.client.get(f"/api/v1/catalog?format={fmt}")
        assert r.status_code == 200
        graph = Graph().parse(data=r.get_data(as_text=True),
                              format="turtle" if fmt == "ttl" else "json-ld")
        assert any("a%3Cb%3E" in str(o) for o in graph.objects())
