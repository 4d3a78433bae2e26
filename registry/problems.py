"""RFC 9457 problem details: every failure the API reports, with each failing field named.

Actions raise `Problem`; the API turns it into `application/problem+json`. Because actions run
inside `Database.write()`, raising also rolls the whole transaction back: nothing half-written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROBLEM_BASE = "https://ndr.example/problems/"


@dataclass(frozen=True)
class FieldError:
    """One failing field: `pointer` is an RFC 6901 JSON Pointer into the request body
    (or `name` for a query parameter / header)."""

    detail: str
    pointer: str | None = None
    name: str | None = None

    def to_json(self) -> dict[str, str]:
        out = {"detail": self.detail}
        if self.pointer is not None:
            out["pointer"] = self.pointer
        if self.name is not None:
            out["name"] = self.name
        return out


@dataclass
class Problem(Exception):
    status: int
    title: str
    detail: str = ""
    slug: str = "about:blank"
    errors: list[FieldError] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.detail or self.title)

    def to_json(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.slug if self.slug == "about:blank" else PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [e.to_json() for e in self.errors]
        body.update(self.extra)
        return body


def bad_request(detail: str, *, errors: list[FieldError] | None = None,
                slug: str = "bad-request") -> Problem:
    return Problem(400, "Bad request", detail, slug, errors or [])


def validation_failed(errors: list[FieldError]) -> Problem:
    n = len(errors)
    return Problem(422, "Validation failed",
                   f"{n} field{'s' if n != 1 else ''} failed validation", "validation", errors)


def unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, "unauthorized",
                   headers={"WWW-Authenticate": 'Bearer realm="ndr"'})


def forbidden(detail: str) -> Problem:
    return Problem(403, "Forbidden", detail, "forbidden")


def not_found(detail: str) -> Problem:
    return Problem(404, "Not found", detail, "not-found")


def gone(detail: str, detail_zh: str) -> Problem:
    """410: the thing was here and is no longer served (said in both languages)."""
    return Problem(410, "Gone", detail, "gone", extra={"detail_zh": detail_zh})


def conflict(detail: str, *, errors: list[FieldError] | None = None) -> Problem:
    return Problem(409, "Conflict", detail, "conflict", errors or [])


def precondition_failed(detail: str) -> Problem:
    return Problem(412, "Precondition failed", detail, "precondition-failed",
                   [FieldError(detail, name="If-Match")])
