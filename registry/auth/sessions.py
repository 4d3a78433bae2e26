"""Portal sessions kept on the server, so that signing out really ends them.

Flask's cookie is signed, not stored: before this, a copied `ndr_session` cookie kept working
for its whole life after the officer signed out (F7). Now the cookie carries a random session
id; the `user_sessions` table holds its SHA-256 (a database leak gives no usable cookie), and a
request is signed in only while that row exists and has not expired. Sign-out deletes the row;
a password change deletes every row of the user.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from registry.auth.models import UserSession
from registry.timefmt import utc_now

SESSION_LIFETIME = timedelta(hours=12)  # an officer signs in again each working day


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def open_session(db: Session, user_id: str) -> str:
    """Record a new session of `user_id`; returns the id to put in the cookie."""
    session_id = secrets.token_urlsafe(32)
    now = utc_now()
    db.add(UserSession(id_sha256=_digest(session_id), user_id=user_id, created_at=now,
                       expires_at=now + SESSION_LIFETIME))
    db.flush()
    return session_id


def session_user_id(db: Session, session_id: object) -> str | None:
    """The user a cookie's session id signs in, or None (unknown, ended or expired)."""
    if not isinstance(session_id, str) or not 20 <= len(session_id) <= 100:
        return None
    row = db.scalar(select(UserSession).where(UserSession.id_sha256 == _digest(session_id)))
    if row is None or row.expires_at <= utc_now():
        return None
    return row.user_id


def close_session(db: Session, session_id: object) -> None:
    if isinstance(session_id, str):
        db.execute(delete(UserSession).where(UserSession.id_sha256 == _digest(session_id)))


def close_all_sessions(db: Session, user_id: str) -> int:
    """End every session of a user (password change, account disabled). Returns how many."""
    result = db.execute(delete(UserSession).where(UserSession.user_id == user_id))
    db.execute(delete(UserSession).where(UserSession.expires_at <= utc_now()))  # tidy up
    return int(getattr(result, "rowcount", 0) or 0)
