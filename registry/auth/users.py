"""Portal users: argon2-hashed passwords, memberships, and the principal a session acts as."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.auth.principal import Principal
from registry.organizations.models import Membership, Organization, Role, User
from registry.problems import FieldError, Problem, conflict, not_found, validation_failed
from registry.timefmt import utc_now

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10

# argon2id as configured takes 64 MiB and most of a core per hash. Unbounded, a burst of 32
# sign-ins doubled a worker's memory (F4); at most this many hash at once in a process, the
# rest wait their turn (and give up with a 503 after HASH_WAIT_SECONDS rather than pile up).
MAX_CONCURRENT_HASHES = max(1, int(os.environ.get("NDR_MAX_CONCURRENT_HASHES", "2")))
HASH_WAIT_SECONDS = float(os.environ.get("NDR_HASH_WAIT_SECONDS", "10"))
_hash_slots = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)
T = TypeVar("T")


@contextmanager
def _hash_slot() -> Iterator[None]:
    if not _hash_slots.acquire(timeout=HASH_WAIT_SECONDS):
        raise Problem(503, "Busy", "too many sign-ins at once; try again in a few seconds",
                      "signin-busy", headers={"Retry-After": "5"})
    try:
        yield
    finally:
        _hash_slots.release()


def _bounded(work: Callable[[], T]) -> T:
    with _hash_slot():
        return work()


def hash_password(password: str) -> str:
    return _bounded(lambda: _hasher.hash(password))


def create_user(session: Session, *, email: str, display_name: str, password: str,
                organization_id: str | None = None, role: str = "editor",
                is_operator: bool = False) -> User:
    email = email.strip().lower()
    errors = []
    if "@" not in email or len(email) > 300:
        errors.append(FieldError("is not an e-mail address", "/email"))
    if len(password) < MIN_PASSWORD_LENGTH:
        errors.append(FieldError(f"must be at least {MIN_PASSWORD_LENGTH} characters",
                                 "/password"))
    if errors:
        raise validation_failed(errors)
    if session.scalar(select(User.id).where(User.email == email)):
        raise conflict(f"a user {email} exists", errors=[FieldError("is taken", "/email")])
    user = User(id=str(uuid.uuid4()), email=email, display_name=display_name,
                password_hash=hash_password(password), is_operator=is_operator,
                created_at=utc_now())
    session.add(user)
    session.flush()
    if organization_id:
        if session.get(Organization, organization_id) is None:
            raise not_found(f"no organisation {organization_id!r}")
        session.add(Membership(user_id=user.id, organization_id=organization_id,
                               role=Role(role).value, created_at=utc_now()))
        session.flush()
    return user


def check_password(session: Session, email: str, password: str) -> User | None:
    """The user if the password is right; None otherwise (same work either way)."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or user.disabled or not user.password_hash:
        hash_password(password)  # spend the same time so e-mails cannot be probed by timing
        return None
    stored = user.password_hash
    try:
        _bounded(lambda: _hasher.verify(stored, password))
    except (VerificationError, InvalidHashError):
        return None
    return user


def set_password(session: Session, user: User, password: str) -> int:
    """Change a password and end every session of the user (a thief's copy included).
    Returns how many sessions were ended."""
    from registry.auth.sessions import close_all_sessions

    if len(password) < MIN_PASSWORD_LENGTH:
        raise validation_failed([FieldError(f"must be at least {MIN_PASSWORD_LENGTH} "
                                            "characters", "/password")])
    user.password_hash = hash_password(password)
    session.flush()
    return close_all_sessions(session, user.id)


def principal_for_user(session: Session, user: User) -> Principal:
    """A user acts for their (first) organisation with their role there."""
    if user.is_operator:
        return Principal(id=f"user:{user.id}", organization_id=None, role=Role.OPERATOR,
                         user_id=user.id)
    membership = session.scalar(select(Membership).where(Membership.user_id == user.id)
                                .order_by(Membership.created_at))
    if membership is None:
        return Principal(id=f"user:{user.id}", organization_id=None, role=Role.MEMBER,
                         user_id=user.id)
    return Principal(id=f"user:{user.id}", organization_id=membership.organization_id,
                     role=Role(membership.role), user_id=user.id)
