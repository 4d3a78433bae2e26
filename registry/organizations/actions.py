"""Organisation actions. The operator creates ministries and provinces; an organisation's admin
may create organisations beneath it (a ministry its bureaux, a province its cities)."""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.auth.principal import Principal, require_operator, require_role
from registry.datasets.validation import collect_errors, load_schema
from registry.organizations.models import Organization, Role
from registry.problems import FieldError, conflict, not_found, validation_failed
from registry.timefmt import rfc3339, utc_now


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema("organization.schema.json"))


def organization_json(org: Organization, dataset_count: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": org.id, "name_zh": org.name_zh, "name_en": org.name_en, "kind": org.kind,
        "parent": org.parent_id, "region_code": org.region_code,
        "description": org.description, "homepage": org.homepage,
        "created": rfc3339(org.created_at),
    }
    if dataset_count is not None:
        body["dataset_count"] = dataset_count
    return body


def organization_create(session: Session, principal: Principal | None,
                        body: Any) -> Organization:
    parent_id = body.get("parent") if isinstance(body, dict) else None
    if parent_id:
        require_role(principal, parent_id, Role.ADMIN)
    else:
        require_operator(principal)
    errors = collect_errors(_validator(), body)
    if errors:
        raise validation_failed(errors)
    if parent_id and session.get(Organization, parent_id) is None:
        raise validation_failed([FieldError("names no organisation", "/parent")])
    if session.get(Organization, body["id"]) is not None:
        raise conflict(f"organisation {body['id']!r} exists",
                       errors=[FieldError("is already taken", "/id")])
    org = Organization(id=body["id"], name_zh=body.get("name_zh"), name_en=body.get("name_en"),
                       kind=body.get("kind", "other"), parent_id=parent_id,
                       region_code=body.get("region_code"), description=body.get("description"),
                       homepage=body.get("homepage"), email=body.get("email"),
                       created_at=utc_now())
    session.add(org)
    session.flush()
    return org


def organization_show(session: Session, organization_id: str) -> Organization:
    org = session.get(Organization, organization_id)
    if org is None:
        raise not_found(f"no organisation {organization_id!r}")
    return org


def organization_list(session: Session) -> list[Organization]:
    return list(session.scalars(select(Organization).order_by(Organization.id)))


def organization_children(session: Session, organization_id: str) -> list[Organization]:
    return list(session.scalars(select(Organization).where(
        Organization.parent_id == organization_id).order_by(Organization.id)))
