"""The API's writes as plain, picklable requests.

A write that passed every check needing no database (permission, request shape, metadata
schema) becomes one of these. The same request is planned in whichever place records it: the
worker's own transaction, the worker's publish batch, or the sequencer process that batches
every worker's publishes (`registry/datasets/sequencer_socket.py`). It carries no ORM objects
and no closures, so it can cross a socket; its answer (`actions.Answer`) is plain data too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from registry.auth.principal import Principal
from registry.datasets import actions


def render_for(status: int, base: str) -> actions.Render:
    """How a recorded version becomes its answer. `base` is the API's /datasets URL, read in
    the request thread: the answer is built in the sequencer, outside any request."""

    def render(recorded: actions.Recorded) -> actions.Answer:
        dataset, version = recorded.dataset, recorded.version
        body = actions.version_json(dataset, version, latest_visible=dataset.current_version)
        return actions.Answer(status, body, {
            "ETag": actions.etag_for(version),
            "Location": f"{base}/{dataset.id}/versions/{version.version}"})

    return render


@dataclass(frozen=True)
class CreateWrite:
    """POST /datasets, prepared in the request thread."""

    prepared: actions.CreateRequest
    claim: actions.IdempotencyClaim | None
    base: str

    def slug_candidates(self) -> list[str]:
        body = self.prepared.body
        return [body["slug"] if body.get("slug") else actions.slug_base(body["metadata"], "")]

    def plan(self, session: Session, claims: actions.BatchClaims | None) -> actions.Plan:
        return actions.create_plan(session, self.prepared, self.claim,
                                   render_for(201, self.base), claims)


@dataclass(frozen=True)
class PatchWrite:
    """PATCH /datasets/<ref>: a merge patch, judged against the latest version when planned."""

    principal: Principal | None
    ref: str
    body: Any
    if_match: str | None
    base: str

    def slug_candidates(self) -> list[str]:
        slug = self.body.get("slug") if isinstance(self.body, dict) else None
        return [slug] if isinstance(slug, str) else []

    def plan(self, session: Session, claims: actions.BatchClaims | None) -> actions.Plan:
        return actions.patch_plan(session, self.principal, self.ref, self.body, self.if_match,
                                  render_for(200, self.base), claims)


@dataclass(frozen=True)
class WithdrawWrite:
    """DELETE /datasets/<ref>: a withdrawal with an optional reason."""

    principal: Principal | None
    ref: str
    note: str | None
    if_match: str | None
    base: str

    def slug_candidates(self) -> list[str]:
        return []

    def plan(self, session: Session, claims: actions.BatchClaims | None) -> actions.Plan:
        return actions.withdraw_plan(session, self.principal, self.ref, self.note,
                                     self.if_match, render_for(200, self.base), claims)


WriteRequest = CreateWrite | PatchWrite | WithdrawWrite
