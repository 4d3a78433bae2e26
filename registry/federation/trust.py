"""The hub's trust configuration: which member logs it follows, with which key, how.

A removed member stops being followed (no cosigning, no polling); its row stays, marked, so
what the hub witnessed and mirrored for it is never silently deleted.
"""

from __future__ import annotations

import json
import urllib.parse

from sqlalchemy import select
from sqlalchemy.orm import Session

from anchoring.auditor.key_rotation import RotationError, open_rotation
from anchoring.note import NoteError, NoteVerifier, split_note
from registry.federation.models import FederationMember, MemberMode, MemberStatus
from registry.problems import FieldError, conflict, not_found, validation_failed
from registry.timefmt import utc_now


def _check(origin: str, verifier_key: str, url: str | None, mode: str,
           interval: float) -> NoteVerifier:
    errors = []
    verifier = None
    try:
        verifier = NoteVerifier.from_vkey(verifier_key)
    except NoteError as exc:
        errors.append(FieldError(str(exc), "/verifier_key"))
    if not origin or "\n" in origin or len(origin) > 255:
        errors.append(FieldError("must be one line of at most 255 characters", "/origin"))
    if url is not None and urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        errors.append(FieldError("must be an http or https URL", "/url"))
    if mode not in (MemberMode.PUSH, MemberMode.POLL):
        errors.append(FieldError("must be push or poll", "/mode"))
    if mode == MemberMode.POLL and not url:
        errors.append(FieldError("is required to poll a member", "/url"))
    if not 1 <= interval <= 86400:
        errors.append(FieldError("must be between 1 and 86400 seconds", "/poll_interval"))
    if errors or verifier is None:
        raise validation_failed(errors)
    return verifier


def add_member(session: Session, origin: str, verifier_key: str, *, url: str | None = None,
               mode: str = MemberMode.PUSH, interval: float = 30.0) -> FederationMember:
    """Follow a member. Re-adding a removed member with the same key resumes it; a different
    key for a known origin is refused (key rotation is a statement signed by the old key)."""
    _check(origin, verifier_key, url, mode, interval)
    member = session.scalar(select(FederationMember).where(
        FederationMember.origin == origin).with_for_update())
    if member is not None:
        if member.verifier_key != verifier_key:
            raise conflict(f"{origin} is already configured with another key",
                           errors=[FieldError("differs from the configured key",
                                              "/verifier_key")])
        member.status, member.removed_at = MemberStatus.ACTIVE, None
        member.url, member.mode, member.poll_interval = url, mode, interval
        return member
    member = FederationMember(origin=origin, verifier_key=verifier_key, url=url, mode=mode,
                              poll_interval=interval, status=MemberStatus.ACTIVE,
                              witnessed_size=0, mirrored_size=0, mirrored_edge="[]",
                              key_history="[]", added_at=utc_now())
    session.add(member)
    session.flush()
    return member


def remove_member(session: Session, origin: str) -> FederationMember:
    member = session.get(FederationMember, origin)
    if member is None:
        raise not_found(f"no member {origin!r}")
    member.status, member.removed_at = MemberStatus.REMOVED, utc_now()
    return member


def list_members(session: Session) -> list[FederationMember]:
    return list(session.scalars(select(FederationMember).order_by(FederationMember.origin)))


def rotate_member_key(session: Session, origin: str, statement: str) -> FederationMember:
    """Move a member to a new key on the word of its current key (a signed statement)."""
    member = session.scalar(select(FederationMember).where(
        FederationMember.origin == origin).with_for_update())
    if member is None:
        raise not_found(f"no member {origin!r}")
    history = json.loads(member.key_history or "[]")
    if any(item.get("statement") == statement for item in history):
        return member  # already followed (a member re-sends its rotations after a 403)
    try:
        rotation = open_rotation(statement, NoteVerifier.from_vkey(member.verifier_key))
    except RotationError as exc:
        raise validation_failed([FieldError(str(exc), "/statement")]) from None
    history.append({"old_key": member.verifier_key, "new_key": rotation.new_key.vkey,
                    "statement": statement, "at": utc_now().isoformat() + "Z"})
    member.key_history = json.dumps(history)
    member.verifier_key = rotation.new_key.vkey
    return member


def statement_origin(statement: str) -> str:
    """The origin a rotation statement names (checked against the member's key after)."""
    try:
        text, _ = split_note(statement)
    except NoteError as exc:
        raise validation_failed([FieldError(f"not a signed note: {exc}", "/statement")]
                                ) from None
    lines = text.split("\n")
    if len(lines) < 2 or not lines[1]:
        raise validation_failed([FieldError("names no origin", "/statement")])
    return lines[1]
