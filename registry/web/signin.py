"""Signing officers in and out: throttling, lockout, server-side sessions (F4, F7).

- Flask-Limiter limits sign-in POSTs per client address and per account typed
  (`NDR_SIGNIN_RATE_PER_CLIENT`, `NDR_SIGNIN_RATE_PER_ACCOUNT`). Its counters live in
  `NDR_RATELIMIT_STORAGE_URI`: `memory://` by default (per worker process), or a shared store
  such as `redis://host:6379` when several workers or hosts should count together.
- The lockout (registry.auth.lockout) is in the database, so it holds across every worker:
  after NDR_SIGNIN_LOCKOUT_FAILURES failures the account refuses even the right password for
  NDR_SIGNIN_LOCKOUT_MINUTES.
- argon2 hashing is bounded per process (registry.auth.users.MAX_CONCURRENT_HASHES).
- The cookie holds only a random session id; the session exists while its row does
  (registry.auth.sessions), so sign-out ends it everywhere, copies included.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from flask import Flask, render_template, request, session
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address

from registry.auth.lockout import account_key, locked_for_seconds, record_failure, record_success
from registry.auth.sessions import close_session, open_session, session_user_id
from registry.auth.users import check_password
from registry.http import registry_state
from registry.web.i18n import current_language

SESSION_KEY = "sid"
SIGNIN_ENDPOINT = "account.signin"

LOCKED = {
    "zh": "登录失败次数过多，此账户已暂时锁定。请在 {minutes} 分钟后再试，或请管理员解锁。",
    "en": "Too many failed sign-ins: this account is locked for now. Try again in {minutes} "
          "minutes, or ask an administrator to unlock it.",
}
TOO_FAST = {
    "zh": "登录尝试过于频繁，请稍等一分钟后再试。",
    "en": "Too many sign-in attempts. Please wait a minute and try again.",
}


@dataclass(frozen=True)
class SigninOutcome:
    session_id: str | None          # set on success: goes into the cookie
    error: str | None = None        # a message for the page (None: the usual wrong-password one)
    status: int = 401
    retry_after: int | None = None


def lockout_message(seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    return LOCKED[current_language()].format(minutes=minutes)


def sign_in(email: str, password: str) -> SigninOutcome:
    """Check the lockout, then the password; count the failure or open a session."""
    db = registry_state().db
    with db.read() as db_session:
        locked = locked_for_seconds(db_session, email)
    if locked:  # refused without hashing: a locked account costs the server nothing
        return SigninOutcome(None, lockout_message(locked), 429, locked)
    with db.read() as db_session:
        user = check_password(db_session, email, password)
        user_id = user.id if user else None
    with db.write() as db_session:
        if user_id is None:
            locked = record_failure(db_session, email)
            if locked:
                return SigninOutcome(None, lockout_message(locked), 429, locked)
            return SigninOutcome(None)
        record_success(db_session, email)
        return SigninOutcome(open_session(db_session, user_id), status=302)


def sign_out() -> None:
    """End the server-side session of the current cookie (a copy of it dies too)."""
    session_id = session.get(SESSION_KEY)
    if session_id:
        with registry_state().db.write() as db_session:
            close_session(db_session, session_id)


def signed_in_user_id() -> str | None:
    """The user the cookie's session signs in, if that session is still open on the server."""
    session_id = session.get(SESSION_KEY)
    if not session_id:
        return None
    with registry_state().db.read() as db_session:
        user_id = session_user_id(db_session, session_id)
    if user_id is None:
        session.pop(SESSION_KEY, None)
    return user_id


def _account_of_request() -> str:
    return "account:" + account_key(request.form.get("email", ""))


def install_signin_limits(app: Flask) -> Limiter:
    """Flask-Limiter on the sign-in POST: per client address and per account."""
    limiter = Limiter(
        get_remote_address, app=app,
        storage_uri=os.environ.get("NDR_RATELIMIT_STORAGE_URI", "memory://"),
        strategy="moving-window", headers_enabled=True, key_prefix="ndr-signin")
    view = app.view_functions[SIGNIN_ENDPOINT]
    per_client = os.environ.get("NDR_SIGNIN_RATE_PER_CLIENT", "30/minute;300/hour")
    per_account = os.environ.get("NDR_SIGNIN_RATE_PER_ACCOUNT", "20/minute;100/hour")
    view = limiter.limit(per_client, methods=["POST"], scope="signin-client")(view)
    view = limiter.limit(per_account, methods=["POST"], key_func=_account_of_request,
                         scope="signin-account")(view)
    app.view_functions[SIGNIN_ENDPOINT] = view
    return limiter


def too_many_signins(exc: RateLimitExceeded) -> tuple[str, int, dict[str, str]]:
    """A throttled sign-in: the sign-in page again, with a message in the reader's language
    (the lockout's, when the account is locked: that is what the officer needs to know)."""
    email = request.form.get("email", "")
    with registry_state().db.read() as db_session:
        locked = locked_for_seconds(db_session, email)
    message = lockout_message(locked) if locked else TOO_FAST[current_language()]
    page = render_template("signin.html", email=email, error=message)
    return page, 429, {"Retry-After": str(max(locked, 60))}
