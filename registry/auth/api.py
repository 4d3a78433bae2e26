"""REST routes for API tokens: an organisation admin mints (shown once), lists and revokes."""

from __future__ import annotations

from flask import Blueprint, Response, request

from registry.auth import tokens
from registry.auth.principal import require_signed_in
from registry.datasets.validation import collect_errors
from registry.http import current_principal, json_body, json_response, registry_state
from registry.organizations.models import Role
from registry.problems import FieldError, bad_request, validation_failed

TOKEN_REQUEST_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["name", "role"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "organization": {"type": "string", "minLength": 1, "maxLength": 64},
        "role": {"enum": [r.value for r in Role]},
        "expires_in_days": {"type": "integer", "minimum": 1,
                            "maximum": tokens.MAX_EXPIRES_DAYS},
    },
}


def create_token() -> Response:
    principal = require_signed_in(current_principal())
    body = json_body()
    from jsonschema import Draft202012Validator

    errors = collect_errors(Draft202012Validator(TOKEN_REQUEST_SCHEMA), body)
    if isinstance(body, dict) and "expires_in_days" in body:
        # words instead of jsonschema's "None is not of type 'integer'"
        errors = [e for e in errors if e.pointer != "/expires_in_days"] + tokens.expiry_errors(
            body["expires_in_days"])
    if errors:
        raise validation_failed(errors)
    organization_id = body.get("organization") or principal.organization_id
    if organization_id is None:
        raise validation_failed([FieldError("is required", "/organization")])
    with registry_state().db.write() as session:
        issued = tokens.token_create(session, principal, name=body["name"],
                                     organization_id=organization_id, role=Role(body["role"]),
                                     expires_in_days=body.get("expires_in_days",
                                                              tokens.DEFAULT_EXPIRES_DAYS))
        out = tokens.token_json(issued.token) | {"token": issued.secret}
    return json_response(out, 201, {"Cache-Control": "no-store"})


def list_tokens() -> Response:
    principal = require_signed_in(current_principal())
    organization_id = request.args.get("organization") or principal.organization_id
    if not organization_id:
        raise bad_request("name the organisation",
                          errors=[FieldError("is required", name="organization")])
    with registry_state().db.read() as session:
        items = [tokens.token_json(t) for t in tokens.token_list(session, principal,
                                                                 organization_id)]
    return json_response({"items": items})


def revoke_token(token_id: str) -> Response:
    principal = current_principal()
    with registry_state().db.write() as session:
        out = tokens.token_json(tokens.token_revoke(session, principal, token_id))
    return json_response(out)


def register_token_routes(bp: Blueprint) -> None:
    bp.add_url_rule("/tokens", "token_create", create_token, methods=["POST"])
    bp.add_url_rule("/tokens", "tokens", list_tokens, methods=["GET"])
    bp.add_url_rule("/tokens/<token_id>", "token_revoke", revoke_token, methods=["DELETE"])
