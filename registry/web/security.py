"""The portal's protections: session secret, CSRF on every form, security headers.

The session secret lives in a 0600 file (created on first start) so that every worker and
restart shares it and it never appears in an environment dump or a log line.
CSRF tokens come from Flask-WTF; they are checked for the portal's own POSTs only, because
the JSON API authenticates with bearer tokens, never with the cookie.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask, Response, abort, request
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms.validators import ValidationError

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'")
CSRF_FIELD = "csrf_token"


def load_or_create_secret(path: Path) -> bytes:
    """The session key from `path`, creating it (0600, 32 random bytes) when missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes().strip()
        if len(key) < 32:
            raise RuntimeError(f"the session secret in {path} is too short") from None
        return key
    with os.fdopen(fd, "wb") as out:
        key = secrets.token_hex(32).encode()
        out.write(key + b"\n")
    return key


def configure_session(app: Flask, secret_file: Path, public_url: str) -> None:
    app.secret_key = load_or_create_secret(secret_file)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=public_url.startswith("https://"),
        SESSION_COOKIE_NAME="ndr_session",
        WTF_CSRF_FIELD_NAME=CSRF_FIELD,
        WTF_CSRF_TIME_LIMIT=8 * 3600,
    )


def require_csrf() -> None:
    """Before each portal request: a POST must carry the session's CSRF token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    try:
        validate_csrf(request.form.get(CSRF_FIELD))
    except (ValidationError, CSRFError):
        abort(400, description="csrf")


def add_security_headers(response: Response) -> Response:
    """After each portal response: CSP and friends on HTML, nosniff everywhere."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    return response
