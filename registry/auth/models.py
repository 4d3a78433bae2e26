"""API tokens: random secrets shown once; only their SHA-256 is stored.

A token is 32 random bytes, so a plain SHA-256 is enough (no password hashing needed: nothing
to brute-force), and lookups stay one indexed equality per request.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.database import Base
from registry.timefmt import utc_now


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    organization_id: Mapped[str | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    # The token whose bearer minted this one (None: the CLI or a signed-in user). Revoking a
    # token revokes everything it minted, so a leaked admin token cannot leave heirs behind.
    minted_by: Mapped[str | None] = mapped_column(String(16), index=True)


def token_is_active(revoked_at: datetime | None, expires_at: datetime | None,
                    now: datetime) -> bool:
    """Whether a token with these dates still authenticates (not revoked, not expired)."""
    return revoked_at is None and (expires_at is None or expires_at > now)


class UserSession(Base):
    """A signed-in portal session, kept on the server so that signing out (or changing the
    password) ends it: the cookie carries a random id, the table only its SHA-256, and a cookie
    whose row is gone no longer signs anyone in, however validly it is signed."""

    __tablename__ = "user_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime] = mapped_column()


class SigninFailures(Base):
    """Consecutive failed sign-ins of one account (the lower-cased e-mail, whether or not a
    user has it, so the lockout does not reveal which addresses exist). Shared by every worker
    and host through the database."""

    __tablename__ = "signin_failures"

    account: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime] = mapped_column(default=utc_now)
    locked_until: Mapped[datetime | None] = mapped_column()
