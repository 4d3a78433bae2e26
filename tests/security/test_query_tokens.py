"""F12: a token in the query string is refused with a 400 naming the parameter and saying to use
the Authorization header; it never authenticates. The access log's redaction is unit-checked
here and end to end in test_gunicorn / test_nginx."""

from __future__ import annotations

import pytest

from registry.access_log import redact
from tests.conftest import RegistryHarness


@pytest.mark.parametrize("parameter", ["access_token", "token", "api_key", "Access_Token", "q"])
def test_a_token_in_the_url_is_refused_and_not_used(registry: RegistryHarness,
                                                     parameter: str) -> None:
    registry.org("mot")
    token = registry.token("mot", "admin")
    for path in ("/api/v1/tokens", "/api/v1/datasets", "/datasets", "/api/3/action/package_list"):
        response = registry.client.get(path, query_string={parameter: token})
        assert response.status_code == 400, (path, response.get_data(as_text=True))
        problem = response.get_json()
        assert problem["errors"] == [{"name": parameter, "detail": problem["errors"][0]["detail"]}]
        assert "Authorization" in problem["detail"] and token not in response.get_data(as_text=True)


def test_ordinary_searches_that_mention_ndr_still_work(registry: RegistryHarness) -> None:
    assert registry.client.get("/api/v1/datasets", query_string={"q": "ndr_rules"}).status_code \
        == 200
    assert registry.client.get("/api/v1/datasets", query_string={"q": "token"}).status_code == 200


def test_redaction_of_log_atoms() -> None:
    token = "ndr_" + "x" * 43
    line = f"GET /api/v1/datasets?a=1&access_token={token}&TOKEN=plain&key=k1 HTTP/1.1"
    redacted = redact(line)
    assert token not in redacted and "plain" not in redacted and "k1" not in redacted
    assert redacted.startswith("GET /api/v1/datasets?a=1&access_token=[redacted]")
    assert redact(f"/datasets/{token}") == "/datasets/ndr_[redacted]"
