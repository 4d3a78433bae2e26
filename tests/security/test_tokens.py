"""F15: every token expires; a negative or missing lifetime is a 422 naming the field; tokens
minted by a token die when it is revoked."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from registry.auth.tokens import MAX_EXPIRES_DAYS
from tests.conftest import RegistryHarness


@pytest.fixture
def admin(registry: RegistryHarness) -> dict[str, str]:
    registry.org("mot")
    return registry.auth(registry.token("mot", "admin"))


@pytest.mark.parametrize("lifetime", [None, 0, -1, -365, MAX_EXPIRES_DAYS + 1, 36500, "30",
                                      True, 1.5])
def test_tokens_that_never_or_already_expire_are_refused(registry: RegistryHarness,
                                                          admin: dict[str, str],
                                                          lifetime: object) -> None:
    response = registry.client.post("/api/v1/tokens", headers=admin, json={
        "name": "forever", "role": "editor", "expires_in_days": lifetime})
    assert response.status_code == 422, response.get_data(as_text=True)
    errors = response.get_json()["errors"]
    assert [e["pointer"] for e in errors] == ["/expires_in_days"]
    assert str(MAX_EXPIRES_DAYS) in errors[0]["detail"] and "expire" in errors[0]["detail"]


def test_every_minted_token_has_an_expiry(registry: RegistryHarness,
                                          admin: dict[str, str]) -> None:
    default = registry.client.post("/api/v1/tokens", headers=admin,
                                   json={"name": "default", "role": "editor"})
    assert default.status_code == 201 and default.get_json()["expires"] is not None
    longest = registry.client.post("/api/v1/tokens", headers=admin, json={
        "name": "a year", "role": "editor", "expires_in_days": MAX_EXPIRES_DAYS})
    assert longest.status_code == 201 and longest.get_json()["expires"] is not None


def test_cli_refuses_tokens_that_never_expire(registry: RegistryHarness, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from registry.cli import cli

    settings = registry.state.settings
    monkeypatch.setenv("NDR_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    runner = CliRunner()
    for days in ("0", "-5", str(MAX_EXPIRES_DAYS + 1)):
        result = runner.invoke(cli, ["token", "create", "--role", "operator",
                                     "--expires-days", days])
        assert result.exit_code != 0 and "--expires-days" in result.output, result.output
    ok = runner.invoke(cli, ["token", "create", "--role", "operator", "--expires-days", "30"])
    assert ok.exit_code == 0, ok.output


def test_revoking_a_token_revokes_what_it_minted(registry: RegistryHarness,
                                                 admin: dict[str, str]) -> None:
    child = registry.client.post("/api/v1/tokens", headers=admin, json={
        "name": "child", "role": "admin", "expires_in_days": 30}).get_json()
    grandchild = registry.client.post("/api/v1/tokens", headers=registry.auth(child["token"]),
                                      json={"name": "grandchild", "role": "editor",
                                            "expires_in_days": 30}).get_json()
    probe = {"name": "probe", "role": "member", "expires_in_days": 1}
    assert registry.client.post("/api/v1/tokens", headers=registry.auth(grandchild["token"]),
                                json=probe).status_code == 403  # alive (an editor cannot mint)
    operator = registry.auth(registry.token(None, "operator"))
    # revoke the admin token that started the chain
    listing = registry.client.get("/api/v1/tokens?organization=mot", headers=operator)
    root_id = next(t["id"] for t in listing.get_json()["items"] if t["name"] == "test"
                   and t["role"] == "admin")
    assert registry.client.delete(f"/api/v1/tokens/{root_id}",
                                  headers=operator).status_code == 200
    for token in (child["token"], grandchild["token"]):
        response = registry.client.get("/api/v1/tokens?organization=mot",
                                       headers=registry.auth(token))
        assert response.status_code == 401, response.get_data(as_text=True)
    listing = registry.client.get("/api/v1/tokens?organization=mot", headers=operator)
    revoked = {t["name"]: t["revoked"] for t in listing.get_json()["items"]}
    assert revoked["child"] and revoked["grandchild"]
