"""The caller of an action and what it may do. Actions check these first, CKAN-style."""

from __future__ import annotations

from dataclasses import dataclass

from registry.organizations.models import ROLE_RANK, Role
from registry.problems import forbidden, unauthorized


@dataclass(frozen=True)
class Principal:
    """An authenticated government user or token. Anonymous callers are `None`."""

    id: str                       # "token:<id>" or "user:<id>", recorded as `created_by`
    organization_id: str | None   # the organisation the credential acts for (None: operator)
    role: Role
    user_id: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.role == Role.OPERATOR

    def has_role_in(self, organization_id: str, minimum: Role) -> bool:
        if self.is_operator:
            return True
        return (self.organization_id == organization_id
                and ROLE_RANK[self.role] >= ROLE_RANK[minimum])


def require_signed_in(principal: Principal | None) -> Principal:
    if principal is None:
        raise unauthorized("this action needs a bearer token (Authorization: Bearer …)")
    return principal


def require_role(principal: Principal | None, organization_id: str, minimum: Role) -> Principal:
    who = require_signed_in(principal)
    if not who.has_role_in(organization_id, minimum):
        raise forbidden(f"needs the {minimum.value} role in organisation {organization_id!r}")
    return who


def require_operator(principal: Principal | None) -> Principal:
    who = require_signed_in(principal)
    if not who.is_operator:
        raise forbidden("only the registry operator may do this")
    return who
