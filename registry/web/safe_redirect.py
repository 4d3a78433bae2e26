"""Where the sign-in page may send an officer afterwards (`/signin?next=…`).

`next` comes from the address bar, so it is hostile until proven otherwise: only a path inside
the department pages is followed. Anything else — another host (`//evil`, `https://…`,
`/\\evil`), a control character (CR/LF would split the Location header), a path outside
`/department` — is dropped and the officer lands on their dashboard.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")
MAX_TARGET_LENGTH = 2000


def department_target(raw: str) -> str | None:
    """`raw` when it is a same-site path under /department, else None."""
    if not raw or len(raw) > MAX_TARGET_LENGTH or _UNSAFE.search(raw):
        return None
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or parts.fragment:
        return None
    if parts.path != "/department" and not parts.path.startswith("/department/"):
        return None
    if "//" in parts.path or "/../" in parts.path + "/" or "/./" in parts.path + "/":
        return None
    return raw
