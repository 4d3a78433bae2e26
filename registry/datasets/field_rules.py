"""What a URL field and a date field of a dataset entry may hold, in one place.

Links: only web and file-transfer addresses (http, https, ftp; mailto for a contact point).
`javascript:`, `vbscript:`, `data:` and every other scheme are refused at validation, because a
link in an entry is rendered on the portal and sent to harvesters (CKAN, DCAT), where a script
URL runs in someone else's browser. The same test is applied again where links are rendered or
exported, so an entry stored before the rule (the log never rewrites one) is never a live link.

Dates: a date must exist on the calendar and lie in years 0001–9999 (what xsd:date, Python and
both databases can represent): `0000-01-01` or `2024-02-30` match a YYYY-MM-DD pattern but are
not dates, and made every DCAT export log a traceback from rdflib.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

SAFE_SCHEMES = ("http", "https", "ftp")
_WEB = r"(?:[Hh][Tt][Tt][Pp][Ss]?|[Ff][Tt][Pp])://[^\s/?#][^\s]*"
# The schema's patterns are these strings (schemas/dataset.schema.json); keep them in step.
SAFE_URL_PATTERN = f"^{_WEB}$"
SAFE_CONTACT_URL_PATTERN = rf"^(?:{_WEB}|[Mm][Aa][Ii][Ll][Tt][Oo]:[^\s]+)$"
_SAFE_URL = re.compile(SAFE_URL_PATTERN)
_SAFE_CONTACT_URL = re.compile(SAFE_CONTACT_URL_PATTERN)

URL_MESSAGE = ("must be a web address starting with http://, https:// or ftp:// "
               "(javascript:, data: and other schemes are not allowed)")
DATE_FIELDS = ("issued", "modified")             # top level and in each distribution
TEMPORAL_FIELDS = ("start", "end")


def safe_link(value: object) -> str | None:
    """`value` if it is an allowed web address, else None (render it as text, or drop it)."""
    if isinstance(value, str) and _SAFE_URL.match(value):
        return value
    return None


def safe_contact_link(value: object) -> str | None:
    if isinstance(value, str) and _SAFE_CONTACT_URL.match(value):
        return value
    return None


def calendar_problem(value: str) -> str | None:
    """Why `value` (a date or an RFC 3339 date-time that already matched the schema's form)
    is not a real moment, in words for the client; None when it is one."""
    try:
        if len(value) == 10:
            date.fromisoformat(value)
            return None
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is not None:
            moment.astimezone(UTC)  # 0001-01-01T00:00+01:00 is before year 1 in UTC
    except (ValueError, OverflowError) as exc:
        reason = str(exc)
        if "day is out of range" in reason:
            return f"is not a date on the calendar ({reason})"
        return "is out of range: years run from 0001 to 9999 (there is no year 0000)"
    return None


def date_field_errors(metadata: object) -> list[tuple[str, str]]:
    """(JSON Pointer below the metadata, message) for every date that is not a real date."""
    if not isinstance(metadata, dict):
        return []
    found: list[tuple[str, str]] = []

    def check(pointer: str, value: object) -> None:
        if isinstance(value, str):
            problem = calendar_problem(value)
            if problem:
                found.append((pointer, problem))

    for name in DATE_FIELDS:
        check(f"/{name}", metadata.get(name))
    temporal = metadata.get("temporal")
    if isinstance(temporal, dict):
        for name in TEMPORAL_FIELDS:
            check(f"/temporal/{name}", temporal.get(name))
    distributions = metadata.get("distributions")
    if isinstance(distributions, list):
        for n, dist in enumerate(distributions):
            if isinstance(dist, dict):
                for name in DATE_FIELDS:
                    check(f"/distributions/{n}/{name}", dist.get(name))
    return found


def rdf_date_ok(value: object) -> bool:
    """Whether `value` can be typed xsd:date / xsd:dateTime without rdflib failing."""
    return isinstance(value, str) and calendar_problem(value) is None
