"""Every read path follows registry.datasets.policy: for public, government-only, draft and
withdrawn datasets, an anonymous reader, another department and the owning department get the
same answer from the JSON API, the CKAN API, DCAT and the portal pages (F14 included)."""

from __future__ import annotations

import re

import pytest

from tests.catalogue.helpers import metadata

KINDS = ("public", "government", "draft", "withdrawn")
VIEWERS = ("anonymous", "other", "own")

# What each viewer gets, per kind of dataset (the rules in registry/datasets/policy.py).
SEEN = {"public": {"anonymous", "other", "own"}, "government": {"other", "own"},
        "draft": {"own"}, "withdrawn": {"anonymous", "other", "own"}}
LISTED = {"public": {"anonymous", "other", "own"}, "government": {"other", "own"},
          "draft": {"own"}, "withdrawn": set()}
EXPORTED = {"public": {"anonymous", "other", "own"}, "government": {"other", "own"},
            "draft": set(), "withdrawn": set()}


def _publish(registry, token: str, kind: str) -> dict:  # type: ignore[no-untyped-def]
    body = {"metadata": metadata(title={"zh": f"可见性{kind}", "en": f"visibility {kind}"}),
            "visibility": "government" if kind == "government" else "public",
            "state": "draft" if kind == "draft" else "published"}
    response = registry.client.post("/api/v1/datasets", json=body,
                                    headers=registry.auth(token))
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    if kind == "withdrawn":
        gone = registry.client.delete(f"/api/v1/datasets/{created['id']}",
                                      headers=registry.auth(token))
        assert gone.status_code == 200, gone.get_json()
    return created


@pytest.fixture
def world(registry):  # type: ignore[no-untyped-def]
    registry.org("own")
    registry.org("other")
    editor = registry.token("own", "editor")
    datasets = {kind: _publish(registry, editor, kind) for kind in KINDS}
    headers = {"anonymous": {}, "other": registry.auth(registry.token("other", "member")),
               "own": registry.auth(registry.token("own", "member"))}
    return registry, datasets, headers


def _ckan(client, action: str, headers: dict, **params: str) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    response = client.get(f"/api/3/action/{action}", query_string=params, headers=headers)
    return response.status_code, response.get_json()


def _show_paths(client, dataset: dict, headers: dict) -> dict[str, bool]:  # type: ignore[no-untyped-def]
    """Each single-dataset read path: does this reader get the dataset?"""
    ref, slug = dataset["id"], dataset["slug"]
    status, _ = _ckan(client, "package_show", headers, id=ref)
    return {
        "api show": client.get(f"/api/v1/datasets/{ref}", headers=headers).status_code == 200,
        "api versions": client.get(f"/api/v1/datasets/{ref}/versions",
                                   headers=headers).status_code == 200,
        "ckan package_show": status == 200,
        "dcat dataset": client.get(f"/api/v1/datasets/{ref}/dcat",
                                   headers=headers).status_code == 200,
        "page": client.get(f"/datasets/{slug}", headers=headers).status_code == 200,
    }


def _list_paths(client, headers: dict) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    """Each listing read path: the dataset ids (or slugs) this reader finds."""
    api = client.get("/api/v1/datasets", query_string={"limit": 100},
                     headers=headers).get_json()
    _, ckan = _ckan(client, "package_search", headers, rows="100")
    page = client.get("/datasets", headers=headers).get_data(as_text=True)
    org_page = client.get("/organizations/own", headers=headers).get_data(as_text=True)
    return {
        "api list": {item["slug"] for item in api["items"]},
        "ckan package_search": {p["name"] for p in ckan["result"]["results"]},
        "search page": set(re.findall(r'href="/datasets/([a-z0-9-]+)"', page)),
        "organisation page": set(re.findall(r'href="/datasets/([a-z0-9-]+)"', org_page)),
    }


def _export_paths(client, headers: dict) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    _, names = _ckan(client, "package_list", headers)
    catalog = client.get("/api/v1/catalog", headers=headers).get_data(as_text=True)
    return {"ckan package_list": set(names["result"]),
            "dcat catalogue": set(re.findall(r"/datasets/([0-9a-f-]{36})", catalog))}


def _counts(client, headers: dict) -> dict[str, int]:  # type: ignore[no-untyped-def]
    _, shown = _ckan(client, "organization_show", headers, id="own")
    _, listed = _ckan(client, "organization_list", headers, all_fields="true")
    api_list = client.get("/api/v1/organizations", headers=headers).get_json()
    return {
        "ckan organization_show": shown["result"]["package_count"],
        "ckan organization_list": next(o["package_count"] for o in listed["result"]
                                       if o["id"] == "own"),
        "api organization": client.get("/api/v1/organizations/own",
                                        headers=headers).get_json()["dataset_count"],
        "api organizations": next(o["dataset_count"] for o in api_list["items"]
                                  if o["id"] == "own"),
    }


@pytest.mark.parametrize("viewer", VIEWERS)
def test_every_read_path_agrees_with_the_policy(world, viewer: str) -> None:  # type: ignore[no-untyped-def]
    registry, datasets, headers = world
    client, who = registry.client, headers[viewer]
    for kind, dataset in datasets.items():
        expected = viewer in SEEN[kind]
        assert _show_paths(client, dataset, who) == dict.fromkeys(
            _show_paths(client, dataset, who), expected), (kind, viewer)
    slugs = {kind: d["slug"] for kind, d in datasets.items()}
    wanted = {slugs[k] for k in KINDS if viewer in LISTED[k]}
    for path, found in _list_paths(client, who).items():
        assert found & set(slugs.values()) == wanted, (path, viewer)
    exports = _export_paths(client, who)
    assert exports["ckan package_list"] == {slugs[k] for k in KINDS if viewer in EXPORTED[k]}
    assert exports["dcat catalogue"] == {datasets[k]["id"] for k in KINDS
                                         if viewer in EXPORTED[k]}
    assert set(_counts(client, who).values()) == {len(wanted)}, viewer


def test_withdrawn_entries_are_listed_only_when_asked(world) -> None:  # type: ignore[no-untyped-def]
    registry, datasets, headers = world
    for viewer in VIEWERS:
        items = registry.client.get("/api/v1/datasets", query_string={
            "include_withdrawn": "true", "limit": 100}, headers=headers[viewer]).get_json()
        assert datasets["withdrawn"]["id"] in {i["id"] for i in items["items"]}, viewer


def test_a_government_entry_does_not_move_the_public_counts(registry) -> None:  # type: ignore[no-untyped-def]
    """F14: one government-only entry; anonymous counts stay, a government reader's move."""
    registry.org("mot")
    registry.org("moe")
    editor = registry.token("mot", "editor")
    other = registry.auth(registry.token("moe", "member"))
    client = registry.client
    _publish(registry, editor, "public")
    _publish(registry, editor, "government")

    def page_count(headers: dict) -> int:
        page = client.get("/organizations", headers=headers).get_data(as_text=True)
        found = re.search(r'/organizations/mot"[^<]*</a>\s*<span class="count">(\d+)<', page)
        assert found, "the departments page shows no count for mot"
        return int(found.group(1))

    def counts(headers: dict) -> set[int]:
        _, shown = _ckan(client, "organization_show", headers, id="mot")
        _, listed = _ckan(client, "organization_list", headers, all_fields="true")
        return {shown["result"]["package_count"],
                next(o["package_count"] for o in listed["result"] if o["id"] == "mot"),
                client.get("/api/v1/organizations/mot", headers=headers)
                .get_json()["dataset_count"],
                next(o["dataset_count"] for o in client.get(
                    "/api/v1/organizations", headers=headers).get_json()["items"]
                    if o["id"] == "mot"), page_count(headers)}

    assert counts({}) == {1}
    assert counts(other) == {2}
