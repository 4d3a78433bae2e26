"""gunicorn's access log, with secrets taken out before a line is written (F12).

A token sent in a URL (`?access_token=ndr_…`) is refused by the application (400), but gunicorn
logs the request line before anyone reads it, and log files travel further than the server
(rotation, shipping, support tickets). This logger rewrites every atom of a line: the values of
token-like query parameters and anything shaped like one of our tokens become `[redacted]`, and
the headers that carry credentials (Authorization, Cookie) are never available to a format.

Used by deploy/gunicorn.conf.py (`logger_class`).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from gunicorn.glogging import Logger

REDACTED = "[redacted]"
_TOKEN_PARAMETER = re.compile(
    r"(?i)((?:^|[?&;])(?:access_token|token|api_key|apikey|key|bearer|auth|authorization|"
    r"password|secret)=)[^&;#\s]*")
_TOKEN_SHAPE = re.compile(r"ndr_[A-Za-z0-9_\-%]{8,}")
_CREDENTIAL_HEADERS = ("{authorization}i", "{cookie}i", "{proxy-authorization}i",
                       "{set-cookie}o", "{http_authorization}e", "{http_cookie}e")


def redact(text: str) -> str:
    """`text` (a request line, query string, path or referrer) without token values."""
    if "=" not in text and "ndr_" not in text:  # what both patterns need; most atoms lack both
        return text
    return _TOKEN_SHAPE.sub("ndr_" + REDACTED, _TOKEN_PARAMETER.sub(r"\1" + REDACTED, text))


class RedactingLogger(Logger):
    """gunicorn's logger; every string atom of an access-log line is redacted."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any],
              request_time: timedelta) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        for name in _CREDENTIAL_HEADERS:
            if name in atoms:
                atoms[name] = REDACTED
        return {name: redact(value) if isinstance(value, str) else value
                for name, value in atoms.items()}
