"""A mirrored public entry that its publisher later restricts stops being public on the hub
(SQLite and PostgreSQL): out of search and exports, its page and API give a notice without
metadata, and its provenance stays."""

from __future__ import annotations

from sqlalchemy import select

from anchoring.auditor.federated import verify_federated
from anchoring.note import NoteVerifier
from registry.datasets.models import DatasetVersion
from registry.datasets.policy import RESTRICTED
from registry.federation.mirror import Mirror, hub_dataset_id
from registry.federation.models import FederatedEntry
from tests.federation.test_mirror import MEMBER_ORIGIN, Setup, setup  # noqa: F401


def _mirror(env: Setup):  # type: ignore[no-untyped-def]
    env.witness()
    report = Mirror(env.hub.state).run_member(MEMBER_ORIGIN)
    assert report.error is None and report.refused == [], report
    return report


def _patch(env: Setup, dataset: str, body: dict) -> None:
    r = env.member.client.patch(f"/api/v1/datasets/{dataset}",
                                headers=env.member.auth(env.token), json=body)
    assert r.status_code == 200, r.get_json()


def test_public_then_government_only_is_withdrawn_from_the_hub(setup: Setup) -> None:  # noqa: F811
    setup.follow()
    tides = setup.publish("Coastal tide tables")
    setup.publish("Forest cover map")
    assert _mirror(setup).mirrored == 2
    assert setup.hub_search("tide") == ["Coastal tide tables"]
    hub_id = hub_dataset_id(MEMBER_ORIGIN, tides)
    page = setup.hub.client.get(f"/api/v1/datasets/{hub_id}")
    assert page.status_code == 200 and page.get_json()["metadata"]["title"]["en"] == \
        "Coastal tide tables"

    _patch(setup, tides, {"visibility": "government"})
    report = _mirror(setup)
    assert (report.mirrored, report.restricted) == (0, 1)

    # National search, for everyone (a signed-in government user on the hub too).
    assert setup.hub_search("tide") == []
    assert setup.hub_search("forest") == ["Forest cover map"]
    setup.hub.org("hubdept")
    hub_token = setup.hub.token("hubdept")
    signed_in = setup.hub.client.get("/api/v1/datasets", headers=setup.hub.auth(hub_token),
                                     query_string={"q": "tide"}).get_json()
    assert signed_in["items"] == []
    # Its API and pages: a notice in both languages, no metadata, for every version.
    for path in (f"/api/v1/datasets/{hub_id}", f"/api/v1/datasets/{hub_id}/versions/1",
                 f"/api/v1/datasets/{hub_id}/versions", f"/api/v1/datasets/{hub_id}/dcat"):
        for headers in ({}, setup.hub.auth(hub_token)):
            gone = setup.hub.client.get(path, headers=headers)
            assert gone.status_code == 410, (path, gone.get_json())
            body = gone.get_json()
            assert "restricted" in body["detail"] and "发布方已限制" in body["detail_zh"]
            assert "metadata" not in body and "Coastal" not in gone.text
    with setup.hub.state.db.read() as session:
        slug = session.get(DatasetVersion, (hub_id, 1)).slug
    for lang, words in (("en", "The publisher restricted this dataset"),
                        ("zh", "发布方已限制此数据集")):
        html = setup.hub.client.get(f"/datasets/{slug}", query_string={"lang": lang})
        assert html.status_code == 410
        text = html.get_data(as_text=True)
        assert words in text and "Coastal tide tables" not in text
    # Exports (CKAN, DCAT) do not carry it either.
    ckan = setup.hub.client.get("/api/3/action/package_list").get_json()["result"]
    assert slug not in ckan and len(ckan) == 1
    catalog = setup.hub.client.get("/api/v1/catalog", headers={"Accept": "text/turtle"})
    assert catalog.status_code == 200
    assert "Forest cover map" in catalog.get_data(as_text=True)
    assert "Coastal tide tables" not in catalog.get_data(as_text=True)

    # Provenance stays: both member leaves, the restricting one recorded as such.
    with setup.hub.state.db.read() as session:
        rows = session.scalars(select(FederatedEntry).where(
            FederatedEntry.dataset_id == hub_id).order_by(FederatedEntry.version)).all()
        assert [r.version for r in rows] == [1, 2]
        assert '"visibility":"government"' in rows[1].entry
        versions = session.scalars(select(DatasetVersion).where(
            DatasetVersion.dataset_id == hub_id).order_by(DatasetVersion.version)).all()
        assert [v.change for v in versions] == ["federated.published", RESTRICTED]
        assert versions[1].metadata_json == "{}"
    # The hub's own self-audit agrees with the restricted rows.
    from registry.datasets.log_audit import catalogue_auditor

    with setup.hub.state.db.read() as session:
        assert catalogue_auditor(setup.hub.state.log)(session, "", 1000)[0] == []
    with setup.hub.state.db.write() as session:
        setup.hub.state.log.sign_checkpoint_if_grown(session)
    bundle = setup.hub.client.get(f"/api/v1/federation/datasets/{hub_id}/versions/1/proof")
    assert bundle.status_code == 200
    data = bundle.get_json()
    assert data["member"]["metadata"] is None and data["restricted"]["zh"]
    steps = verify_federated(data, NoteVerifier.from_vkey(setup.hub.state.log.verifier_key),
                             member_key=NoteVerifier.from_vkey(
                                 setup.member.state.log.verifier_key))
    assert [s.name for s in steps if not s.ok] == ["metadata hash"]  # only the withheld part

    # The publisher makes it public again: the hub shows it again.
    _patch(setup, tides, {"visibility": "public",
                          "metadata": {"keywords": ["tides", "coast"]}})
    assert _mirror(setup).mirrored == 1
    assert setup.hub_search("tide") == ["Coastal tide tables"]
    assert setup.hub.client.get(f"/api/v1/datasets/{hub_id}").status_code == 200


def test_restricted_in_the_same_batch_and_withdrawn_entries(setup: Setup) -> None:  # noqa: F811
    """Published and restricted before the hub's first pass: never fetched nor shown (and no
    refusal: the member rightly no longer serves it); a withdrawn public entry leaves search,
    shown withdrawn as on the member, with its provenance."""
    setup.follow()
    brief = setup.publish("Harbour dredging plan")
    _patch(setup, brief, {"visibility": "government"})
    gone = setup.publish("Old bus timetable")
    assert setup.member.client.delete(f"/api/v1/datasets/{gone}", headers=setup.member.auth(
        setup.token)).status_code == 200
    setup.publish("Grain reserve (government)", visibility="government")
    report = _mirror(setup)
    assert (report.mirrored, report.restricted, report.skipped) == (2, 0, 3)
    assert setup.hub_search("harbour") == []
    assert setup.hub_search("timetable") == []
    hub_id = hub_dataset_id(MEMBER_ORIGIN, brief)
    assert setup.hub.client.get(f"/api/v1/datasets/{hub_id}").status_code == 404  # never held
    withdrawn = hub_dataset_id(MEMBER_ORIGIN, gone)
    with setup.hub.state.db.read() as session:
        assert session.scalar(select(FederatedEntry).where(
            FederatedEntry.dataset_id == hub_id)) is None
        assert len(session.scalars(select(FederatedEntry).where(
            FederatedEntry.dataset_id == withdrawn)).all()) == 2
    shown = setup.hub.client.get(f"/api/v1/datasets/{withdrawn}").get_json()
    assert shown["state"] == "withdrawn"  # as the member shows it: withdrawn, still public
