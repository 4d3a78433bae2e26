"""Every kind of bad input gets RFC 9457 problem+json naming the field, and writes nothing."""

from __future__ import annotations

import pytest

from tests.catalogue.helpers import counts, metadata


@pytest.fixture
def editor(registry):  # type: ignore[no-untyped-def]
    registry.org("mot")
    return registry.auth(registry.token("mot"))


def _problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == status and body["title"]
    return body


def _pointers(body: dict) -> set[str]:
    return {e.get("pointer") or e.get("name") for e in body.get("errors", [])}


def test_malformed_json_names_line_and_column(registry, editor) -> None:  # type: ignore[no-untyped-def]
    before = counts(registry)
    r = registry.client.post("/api/v1/datasets", data='{"metadata": {"title": }',
                             headers={**editor, "Content-Type": "application/json"})
    body = _problem(r, 400)
    assert "line 1 column" in body["detail"]
    assert counts(registry) == before


def test_invalid_utf8_is_rejected(registry, editor) -> None:  # type: ignore[no-untyped-def]
    r = registry.client.post("/api/v1/datasets", data=b'{"metadata": "\xff\xfe"}',
                             headers={**editor, "Content-Type": "application/json"})
    body = _problem(r, 400)
    assert "UTF-8" in body["detail"]


def test_every_failing_field_is_named(registry, editor) -> None:  # type: ignore[no-untyped-def]
    before = counts(registry)
    bad = metadata(keywords="not-a-list", data_grade="secret", colour="blue")
    bad["title"] = {"fr": "Trafic"}
    bad["distributions"][0]["byte_size"] = -5
    del bad["description"]
    r = registry.client.post("/api/v1/datasets", json={"metadata": bad, "extra": 1},
                             headers=editor)
    body = _problem(r, 422)
    assert {"/extra"} <= _pointers(body) or "/extra" in _pointers(body)
    # The envelope is checked first; fix it and every metadata field is reported at once.
    r = registry.client.post("/api/v1/datasets", json={"metadata": bad}, headers=editor)
    body = _problem(r, 422)
    assert {"/metadata/keywords", "/metadata/data_grade", "/metadata/colour",
            "/metadata/title/fr", "/metadata/distributions/0/byte_size",
            "/metadata/description"} <= _pointers(body)
    assert counts(registry) == before


def test_conditional_sharing_needs_conditions(registry, editor) -> None:  # type: ignore[no-untyped-def]
    r = registry.client.post("/api/v1/datasets",
                             json={"metadata": metadata(sharing={"type": "conditional"})},
                             headers=editor)
    assert "/metadata/sharing/conditions" in _pointers(_problem(r, 422))


def test_body_over_the_limit_is_413(registry, editor) -> None:  # type: ignore[no-untyped-def]
    limit = registry.app.config["MAX_CONTENT_LENGTH"]
    huge = metadata(version_notes="x" * (limit + 10))
    before = counts(registry)
    r = registry.client.post("/api/v1/datasets", json={"metadata": huge}, headers=editor)
    _problem(r, 413)
    assert counts(registry) == before


def test_wrong_content_type_is_415(registry, editor) -> None:  # type: ignore[no-untyped-def]
    r = registry.client.post("/api/v1/datasets", data="metadata=1",
                             headers={**editor, "Content-Type": "text/plain"})
    assert "Content-Type" in _pointers(_problem(r, 415))


def test_missing_and_bad_tokens_are_401(registry) -> None:  # type: ignore[no-untyped-def]
    registry.org("mot")
    r = registry.client.post("/api/v1/datasets", json={"metadata": metadata()})
    assert _problem(r, 401) and r.headers["WWW-Authenticate"].startswith("Bearer")
    r = registry.client.post("/api/v1/datasets", json={"metadata": metadata()},
                             headers={"Authorization": "Bearer ndr_not-a-real-token"})
    _problem(r, 401)


def test_revoked_and_expired_tokens_are_401(registry) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from registry.auth.models import ApiToken
    from registry.auth.tokens import token_sha256
    from registry.timefmt import utc_now

    registry.org("mot")
    admin = registry.token("mot", "admin")
    minted = registry.client.post("/api/v1/tokens", json={"name": "ci", "role": "editor"},
                                  headers=registry.auth(admin))
    assert minted.status_code == 201
    secret, token_id = minted.get_json()["token"], minted.get_json()["id"]
    with registry.state.db.read() as session:
        stored = session.get(ApiToken, token_id)
        assert stored.token_sha256 == token_sha256(secret)
        assert secret not in (stored.token_sha256, stored.name)
    ok = registry.client.post("/api/v1/datasets", json={"metadata": metadata()},
                              headers=registry.auth(secret))
    assert ok.status_code == 201
    assert registry.client.delete(f"/api/v1/tokens/{token_id}",
                                  headers=registry.auth(admin)).status_code == 200
    _problem(registry.client.post("/api/v1/datasets", json={"metadata": metadata()},
                                  headers=registry.auth(secret)), 401)
    other = registry.token("mot")
    with registry.state.db.write() as session:
        token = session.query(ApiToken).filter_by(
            token_sha256=token_sha256(other)).one()
        token.expires_at = utc_now() - timedelta(seconds=1)
    _problem(registry.client.post("/api/v1/datasets", json={"metadata": metadata()},
                                  headers=registry.auth(other)), 401)


def test_other_organisations_dataset_is_403(registry, editor) -> None:  # type: ignore[no-untyped-def]
    registry.org("moe")
    created = registry.client.post("/api/v1/datasets", json={"metadata": metadata()},
                                   headers=editor).get_json()
    stranger = registry.auth(registry.token("moe"))
    before = counts(registry)
    _problem(registry.client.patch(f"/api/v1/datasets/{created['id']}",
                                   json={"metadata": {"keywords": ["x"]}}, headers=stranger),
             403)
    _problem(registry.client.delete(f"/api/v1/datasets/{created['id']}", headers=stranger),
             403)
    _problem(registry.client.post("/api/v1/datasets",
                                  json={"metadata": metadata(), "organization": "mot"},
                                  headers=stranger), 403)
    member = registry.auth(registry.token("mot", "member"))
    _problem(registry.client.post("/api/v1/datasets", json={"metadata": metadata()},
                                  headers=member), 403)
    assert counts(registry) == before


def test_unknown_ids_are_404(registry) -> None:  # type: ignore[no-untyped-def]
    _problem(registry.client.get("/api/v1/datasets/no-such-dataset"), 404)
    _problem(registry.client.get("/api/v1/datasets/no-such/versions/1"), 404)
    _problem(registry.client.get("/api/v1/organizations/nope"), 404)


def test_slug_conflict_is_409_and_if_match_412(registry, editor) -> None:  # type: ignore[no-untyped-def]
    first = registry.client.post("/api/v1/datasets",
                                 json={"metadata": metadata(), "slug": "road-traffic"},
                                 headers=editor)
    assert first.status_code == 201
    before = counts(registry)
    dup = registry.client.post("/api/v1/datasets",
                               json={"metadata": metadata(), "slug": "road-traffic"},
                               headers=editor)
    assert "/slug" in _pointers(_problem(dup, 409))
    stale = registry.client.patch("/api/v1/datasets/road-traffic",
                                  json={"metadata": {"keywords": ["y"]}},
                                  headers={**editor, "If-Match": '"v7"'})
    assert "If-Match" in _pointers(_problem(stale, 412))
    assert counts(registry) == before


def test_bad_query_parameters_are_named(registry) -> None:  # type: ignore[no-untyped-def]
    body = _problem(registry.client.get("/api/v1/datasets?limit=abc"), 400)
    assert "limit" in _pointers(body)
    body = _problem(registry.client.get("/api/v1/datasets?colour=red"), 400)
    assert "colour" in _pointers(body)
    body = _problem(registry.client.get("/api/v1/log/proof/inclusion?index=-1&size=1"), 400)
    assert body["errors"]


def test_validation_failure_midway_rolls_back(registry, editor, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A failure after the log append (here: in the search index) leaves nothing behind."""
    before = counts(registry)

    def broken_index(session, docs):  # type: ignore[no-untyped-def]
        raise RuntimeError("index is down")

    monkeypatch.setattr(registry.state.search, "index", broken_index)
    r = registry.client.post("/api/v1/datasets", json={"metadata": metadata()}, headers=editor)
    assert r.status_code == 500 and r.mimetype == "application/problem+json"
    assert counts(registry) == before


def test_nul_characters_are_refused_everywhere(registry, editor) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL text cannot hold U+0000: a 400/422 naming the place, never a 500."""
    body = _problem(registry.client.get("/api/v1/datasets?data_grade=a%00b"), 400)
    assert "data_grade" in _pointers(body)
    body = _problem(registry.client.get("/api/v1/datasets/x%00y"), 400)
    assert "ref" in _pointers(body)
    before = counts(registry)
    r = registry.client.post("/api/v1/datasets", headers=editor, json={
        "metadata": metadata(title={"zh": "标题\u0000"})})
    assert "/metadata/title/zh" in _pointers(_problem(r, 422))
    assert counts(registry) == before


def test_nul_in_any_json_body_is_a_field_error(registry) -> None:  # type: ignore[no-untyped-def]
    operator = registry.auth(registry.token(None, "operator"))
    r = registry.client.post("/api/v1/organizations", headers=operator,
                             json={"id": "nul-org", "name_zh": "部\u0000门"})
    assert "/name_zh" in _pointers(_problem(r, 422))
    assert registry.client.get("/api/v1/organizations/nul-org").status_code == 404


def test_integers_beyond_the_databases_range_are_refused(registry, editor) -> None:  # type: ignore[no-untyped-def]
    """Found by schemathesis: a 20-digit cursor reached PostgreSQL as an overflow (500)."""
    for before in ("36104259018302664704", "9223372036854775806"):  # anchor ids are 32-bit
        body = _problem(registry.client.get(f"/api/v1/anchors?before={before}"), 400)
        assert "before" in _pointers(body)
    created = registry.client.post("/api/v1/datasets", json={"metadata": metadata()},
                                   headers=editor).get_json()
    huge = registry.client.get(f"/api/v1/datasets/{created['id']}/versions/99999999999999")
    _problem(huge, 404)
    body = _problem(registry.client.get(
        f"/api/v1/datasets/{created['id']}/versions?after=99999999999999999999999"), 400)
    assert "after" in _pointers(body)
