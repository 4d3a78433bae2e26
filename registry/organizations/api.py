"""REST routes for organisations (departments). Dataset counts are those the reader would
find listed (`registry.datasets.policy`), so they never reveal government-only entries."""

from __future__ import annotations

from flask import Blueprint, Response, url_for

from registry.datasets.policy import organization_counts
from registry.http import current_principal, json_body, json_response, registry_state
from registry.organizations import actions


def list_organizations() -> Response:
    principal = current_principal()
    with registry_state().db.read() as session:
        counts = organization_counts(session, principal)
        items = [actions.organization_json(o, counts.get(o.id, 0))
                 for o in actions.organization_list(session)]
    return json_response({"items": items, "total": len(items)})


def show_organization(organization_id: str) -> Response:
    principal = current_principal()
    with registry_state().db.read() as session:
        org = actions.organization_show(session, organization_id)
        body = actions.organization_json(
            org, organization_counts(session, principal).get(org.id, 0))
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
