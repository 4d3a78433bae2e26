"""The OpenAPI document is valid OpenAPI 3.1 and describes every /api/v1 route the app serves."""

from __future__ import annotations

import re


def test_openapi_is_valid_and_complete(registry) -> None:  # type: ignore[no-untyped-def]
    from openapi_spec_validator import validate

    document = registry.client.get("/api/v1/openapi.json").get_json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    documented = set(document["paths"])
    served = set()
    for rule in registry.app.url_map.iter_rules():
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        if path.startswith("/api/v1/") and path != "/api/v1/openapi.json":
            served.add(path)
    assert served - documented == set(), "undocumented routes"
    assert documented - served == set(), "documented routes that do not exist"
