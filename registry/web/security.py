"""The portal's protections: session secret, CSRF on every form, security headers.

The session secret lives in a 0600 file (created on first start, race-free across workers) so
that every worker and restart shares it and it never appears in an environment dump or a log
line. The cookie carries only a server-side session id (registry.auth.sessions).
CSRF tokens come from Flask-WTF; they are checked for the portal's own POSTs only, because
the JSON API authenticates with bearer tokens, never with the cookie.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from flask import Flask, Response, abort, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, validate_csrf
from werkzeug.middleware.proxy_fix import ProxyFix
from wtforms.validators import ValidationError

from anchoring.private_files import create_or_load
from registry.auth.sessions import SESSION_LIFETIME

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'")
CSRF_FIELD = "csrf_token"


def load_or_create_secret(path: Path) -> bytes:
    """The session key from `path`, creating it (0600, 32 random bytes) when missing. Safe when
    every gunicorn worker starts at once on a fresh install (F19); a file group or others can
    read is refused (F8): whoever reads it can forge any officer's session."""
    content, _created = create_or_load(path, lambda: secrets.token_hex(32).encode() + b"\n")
    key = content.strip()
    if len(key) < 32:
        raise RuntimeError(f"the session secret in {path} is too short")
    return key


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, with the Secure flag also whenever the request itself
    came over https (directly, or through a trusted proxy that says so), not only when the
    public URL is configured as https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(super().get_cookie_secure(app) or (has_request_context()
                                                       and request.is_secure))


def configure_session(app: Flask, secret_file: Path, public_url: str) -> None:
    app.secret_key = load_or_create_secret(secret_file)
    app.session_interface = SessionInterface()
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=public_url.startswith("https://"),
        SESSION_COOKIE_NAME="ndr_session",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        WTF_CSRF_FIELD_NAME=CSRF_FIELD,
        WTF_CSRF_TIME_LIMIT=8 * 3600,
    )


def trust_proxies(app: Flask, hops: int) -> None:
    """Behind `hops` reverse proxies (NDR_TRUSTED_PROXIES), take the client address and the
    scheme from their X-Forwarded-For / X-Forwarded-Proto, so rate limits see the real client
    and https requests get secure cookies and HSTS. Never trust these headers without a proxy:
    any client could claim any address."""
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops,  # type: ignore[method-assign]
                                x_host=hops)


def require_csrf() -> None:
    """Before each portal request: a POST must carry the session's CSRF token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    try:
        validate_csrf(request.form.get(CSRF_FIELD))
    except (ValidationError, CSRFError):
        abort(400, description="csrf")


HSTS = "max-age=31536000; includeSubDomains"


def add_security_headers(response: Response) -> Response:
    """After each response: HSTS under https, CSP and friends on HTML, nosniff everywhere."""
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    return response
