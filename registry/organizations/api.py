"""REST routes for organisations (departments)."""

from __future__ import annotations

from flask import Blueprint, Response, url_for

from registry.http import current_principal, json_body, json_response, registry_state
from registry.organizations import actions


def list_organizations() -> Response:
    with registry_state().db.read() as session:
        counts = actions.published_counts(session)
        items = [actions.organization_json(o, counts.get(o.id, 0))
                 for o in actions.organization_list(session)]
    return json_response({"items": items, "total": len(items)})


def show_organization(organization_id: str) -> Response:
    with registry_state().db.read() as session:
        org = actions.organization_show(session, organization_id)
        body = actions.organization_json(org, actions.published_counts(session).get(org.id, 0))
        body["children"] = [c.id for c in actions.organization_children(session, org.id)]
        body["ancestry"] = [o.id for o in org.ancestry()]
    return json_response(body)


def create_organization() -> Response:
    principal = current_principal()
    body = json_body()
    with registry_state().db.write() as session:
        org = actions.organization_create(session, principal, body)
        out = actions.organization_json(org, 0)
    return json_response(out, 201, {"Location": url_for("api.organization",
                                                        organization_id=out["id"])})


def register_organization_routes(bp: Blueprint) -> None:
    bp.add_url_rule("/organizations", "organizations", list_organizations, methods=["GET"])
    bp.add_url_rule("/organizations", "organization_create", create_organization,
                    methods=["POST"])
    bp.add_url_rule("/organizations/<organization_id>", "organization", show_organization)
