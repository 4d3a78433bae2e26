"""Harvest of log-less sources: another instance's CKAN API, a DCAT-AP file, a data.json file;
change detection, a failing source, the label."""

from __future__ import annotations

import json
import threading

from flask import Flask, Response
from sqlalchemy import select
from werkzeug.serving import make_server

from registry.federation.harvest import LABEL, add_source, harvest_source, run_due
from registry.federation.models import HarvestSource
from tests.catalogue.helpers import metadata
from tests.federation.conftest import serve

DCAT_TTL = """@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dct: <http://purl.org/dc/terms/> .
<https://data.example.eu/ds/air> a dcat:Dataset ;
    dct:identifier "air-quality" ;
    dct:title "Air quality stations"@en ;
    dct:description "Hourly readings of the air quality network."@en ;
    dcat:keyword "air", "pollution" ;
    dcat:distribution [ a dcat:Distribution ;
        dcat:accessURL <https://data.example.eu/air.csv> ; dct:format "CSV" ] .
<https://data.example.eu/ds/noise> a dcat:Dataset ;
    dct:identifier "noise-map" ;
    dct:title "Noise map"@en ;
    dct:description "Strategic noise map of the city."@en .
"""


class Files:
    """A tiny web server for source files whose content a test can change."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[str, str]] = {}
        app = Flask("files")

        @app.get("/<path:name>")
        def get(name: str) -> Response:
            if name not in self.files:
                return Response("no", status=404)
            body, ctype = self.files[name]
            return Response(body, content_type=ctype)

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()


def _datajson(titles: dict[str, str]) -> str:
    return json.dumps({"dataset": [
        {"identifier": key, "title": title, "description": f"About {title}.",
         "accessLevel": "public", "keyword": ["test"],
         "modified": "2024-01-01",
         "publisher": {"name": "City"}, "contactPoint": {"fn": "x", "hasEmail": "a@b.cn"}}
        for key, title in titles.items()]})


def _titles(hub, text: str) -> list[str]:  # type: ignore[no-untyped-def]
    items = hub.client.get("/api/v1/datasets", query_string={"q": text}).get_json()["items"]
    return sorted(item["title"].get("en") or item["title"].get("zh") for item in items)


def test_three_kinds_of_sources_with_change_detection(make_registry, served) -> None:  # type: ignore[no-untyped-def]
    hub = make_registry("hub", "hub.example.gov.cn/log")
    other = make_registry("ckan-source", "other.example.gov.cn/log")
    served.append(serve(other))
    other.org("dept")
    token = other.token("dept")
    for title in ("Bridge inspections", "Ferry timetables"):
        assert other.client.post("/api/v1/datasets", headers=other.auth(token), json={
            "metadata": metadata(title={"zh": title, "en": title})}).status_code == 201
    files = Files()
    try:
        files.files["catalog.ttl"] = (DCAT_TTL, "text/turtle")
        files.files["data.json"] = (_datajson({"p1": "Parking meters", "p2": "Park benches"}),
                                    "application/json")
        with hub.state.db.write() as session:
            add_source(session, "ckan", served[0].url)
            add_source(session, "dcat", files.url + "/catalog.ttl")
            pod = add_source(session, "datajson", files.url + "/data.json").id
        first = {r.source: r for r in run_due(hub.state)}
        assert first[served[0].url].created == 2, first[served[0].url].line()
        assert first[files.url + "/catalog.ttl"].created == 2
        assert first[files.url + "/data.json"].created == 2
        assert _titles(hub, "Bridge") == ["Bridge inspections"]
        assert _titles(hub, "Air quality") == ["Air quality stations"]
        with hub.state.db.read() as session:
            assert hub.state.log.size(session) == 6  # into the hub's own log
        # Nothing changed at the sources: nothing is written.
        again = harvest_source(hub.state, pod)
        assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
        # One updated, one gone.
        files.files["data.json"] = (_datajson({"p1": "Parking meters 2025"}),
                                    "application/json")
        changed = harvest_source(hub.state, pod)
        assert (changed.updated, changed.withdrawn, changed.created) == (1, 1, 0), changed.line()
        assert "Park benches" not in _titles(hub, "Park benches")
        sources = hub.client.get("/api/v1/federation/harvest-sources").get_json()["sources"]
        assert {s["label"] for s in sources} == {LABEL}
        # The organisation holding them says so too.
        hit = hub.client.get("/api/v1/datasets", query_string={"q": "Parking"}).get_json()
        org = hub.client.get(f"/api/v1/organizations/{hit['items'][0]['organization']}")
        assert LABEL in json.dumps(org.get_json(), ensure_ascii=False)
    finally:
        files.stop()


def test_a_failing_source_backs_off_and_never_blocks_the_others(make_registry) -> None:  # type: ignore[no-untyped-def]
    hub = make_registry("hub", "hub.example.gov.cn/log")
    files = Files()
    try:
        files.files["data.json"] = (_datajson({"a": "Alpha list"}), "application/json")
        files.files["garbage.json"] = ("{not json", "application/json")
        with hub.state.db.write() as session:
            dead = add_source(session, "ckan", "http://127.0.0.1:9", 60).id
            garbage = add_source(session, "datajson", files.url + "/garbage.json", 60).id
            bad_ttl = add_source(session, "dcat", files.url + "/garbage.json", 60).id
            add_source(session, "datajson", files.url + "/data.json", 60)
        reports = run_due(hub.state)
        assert sum(1 for r in reports if r.error) == 3
        assert sum(r.created for r in reports) == 1
        with hub.state.db.read() as session:
            for sid in (dead, garbage, bad_ttl):
                row = session.get(HarvestSource, sid)
                assert row.failures == 1 and row.last_error and row.next_run_at > row.last_run_at
            assert session.scalars(select(HarvestSource).where(
                HarvestSource.failures > 0)).all()
        assert run_due(hub.state) == []  # nothing due yet: backed off
    finally:
        files.stop()
