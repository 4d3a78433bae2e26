"""One notion of "now" and one timestamp format (RFC 3339, UTC, whole seconds) everywhere."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Naive UTC now: SQLite has no time zones, so the database stores naive UTC throughout."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def rfc3339(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0).isoformat() + "Z"
