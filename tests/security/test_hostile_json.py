"""F2: hostile JSON bodies (deep nesting, huge numbers, NaN) are a 400 naming the body on every
JSON endpoint, never a 500, and nothing is written."""

from __future__ import annotations

import json

import pytest

from tests.catalogue.helpers import counts, metadata

DEEP_ARRAY = "[" * 2000 + "]" * 2000
DEEP_OBJECT = '{"a":' * 5000 + "1" + "}" * 5000
HUGE_INTEGER = "1" * 5000
HOSTILE = {
    "deep-array": DEEP_ARRAY,
    "deep-object": DEEP_OBJECT,
    "huge-integer": HUGE_INTEGER,
    "huge-integer-in-field": '{"expires_in_days": ' + HUGE_INTEGER + "}",
    "moderately-deep": "[" * 200 + "]" * 200,  # below the recursion limit, above ours
    "nan": '{"name": NaN}',
    "infinity": "[1e999]",
}


def _json_endpoints(registry) -> list[tuple[str, str, dict[str, str]]]:  # type: ignore[no-untyped-def]
    registry.org("transport")
    admin = registry.token("transport", "admin")
    headers = registry.auth(admin) | {"Content-Type": "application/json"}
    created = registry.client.post("/api/v1/datasets", json={"metadata": metadata()},
                                   headers=registry.auth(admin))
    assert created.status_code == 201, created.get_data(as_text=True)
    dataset_id = created.get_json()["id"]
    operator = registry.token(None, "operator")
    return [
        ("POST", "/api/v1/datasets", headers),
        ("PATCH", f"/api/v1/datasets/{dataset_id}", headers | {"If-Match": "*"}),
        ("POST", "/api/v1/tokens", headers),
        ("POST", "/api/v1/organizations",
         registry.auth(operator) | {"Content-Type": "application/json"}),
    ]


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_json_is_a_400_naming_the_body(registry, kind: str) -> None:  # type: ignore[no-untyped-def]
    endpoints = _json_endpoints(registry)
    before = counts(registry)
    for method, path, headers in endpoints:
        response = registry.client.open(path, method=method, data=HOSTILE[kind],
                                        headers=headers)
        assert response.status_code == 400, (method, path, response.get_data(as_text=True))
        assert response.mimetype == "application/problem+json"
        problem = response.get_json()
        assert problem["errors"][0]["pointer"] == ""  # the body itself
        assert "JSON" in problem["detail"]
    assert counts(registry) == before


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_ckan_post_bodies_and_facets_refuse_hostile_json(registry, kind: str) -> None:  # type: ignore[no-untyped-def]
    response = registry.client.post("/api/3/action/package_search", data=HOSTILE[kind],
                                     content_type="application/json")
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["success"] is False
    facets = registry.client.get("/api/3/action/package_search",
                                 query_string={"facet.field": HOSTILE[kind]})
    assert facets.status_code < 500, facets.get_data(as_text=True)


def test_reasonable_json_still_works(registry) -> None:  # type: ignore[no-untyped-def]
    registry.org("transport")
    admin = registry.token("transport", "admin")
    body = json.dumps({"metadata": metadata(), "extra_number_check": None})
    response = registry.client.post("/api/v1/datasets", data=body,
                                    headers=registry.auth(admin)
                                    | {"Content-Type": "application/json"})
    assert response.status_code == 422  # unknown field, but parsed and validated normally
    ok = registry.client.post("/api/v1/tokens", json={"name": "x", "role": "editor",
                                                      "expires_in_days": 30},
                              headers=registry.auth(admin))
    assert ok.status_code == 201, ok.get_data(as_text=True)
