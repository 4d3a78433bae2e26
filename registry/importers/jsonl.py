"""Our own import format: one JSON object per line, metadata already in our schema.

    {"external_id": "...", "slug": "...", "visibility": "public", "metadata": {...}}

Used for migrations and for re-importing an export, so nothing is mapped: the metadata is
validated exactly as given. `visibility` is required rather than defaulted, since a default of
"public" would publish by accident what a forgotten field meant to keep internal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from registry.importers.outcomes import Outcome, RejectedRecord
from registry.importers.validation import finish

_REQUIRED = ("external_id", "visibility", "metadata")
_ALLOWED = frozenset({*_REQUIRED, "slug", "publisher_path"})
_SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,118}[a-z0-9])?$")


def read(path: Path) -> Iterator[Outcome]:
    """One outcome per non-blank line; `position` is the 1-based line number."""
    with Path(path).open(encoding="utf-8-sig") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                yield parse_line(number, line)


def parse_line(number: int, line: str) -> Outcome:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as error:
        return RejectedRecord(number, None, [f"/: not JSON: {error.msg} (column {error.colno})"],
                              line.rstrip("\r\n"))
    if not isinstance(entry, dict):
        return RejectedRecord(number, None, ["/: each line must be a JSON object"], entry)
    external_id = entry.get("external_id")
    reasons = _envelope_errors(entry)
    if reasons:
        return RejectedRecord(
            number, external_id if isinstance(external_id, str) else None, reasons, entry
        )
    outcome = finish(
        number,
        external_id,
        entry.get("slug"),
        entry["metadata"],
        entry["visibility"],
        tuple(entry.get("publisher_path") or ()),
        source=entry,
    )
    if isinstance(outcome, RejectedRecord):
        # Pointers are made relative to the line, like the envelope errors above.
        reasons = [_under_metadata(reason) for reason in outcome.reasons]
        return RejectedRecord(number, external_id, reasons, entry)
    return outcome


def _envelope_errors(entry: dict[str, Any]) -> list[str]:
    """Errors in the wrapper around the metadata; unknown keys are errors so that a misspelt
    "visiblity" is caught instead of silently ignored."""
    reasons = [f"/{key}: is required" for key in _REQUIRED if key not in entry]
    reasons += [f"/{key}: is not a known field" for key in entry if key not in _ALLOWED]
    external_id = entry.get("external_id")
    if "external_id" in entry and not (isinstance(external_id, str) and external_id.strip()):
        reasons.append("/external_id: must be a non-empty string")
    if "visibility" in entry and entry["visibility"] not in ("public", "government"):
        reasons.append("/visibility: must be 'public' or 'government'")
    slug = entry.get("slug")
    if slug is not None and not (isinstance(slug, str) and _SLUG_RE.match(slug)):
        reasons.append("/slug: must be lower-case a-z, 0-9 and '-', at most 120 characters")
    if "metadata" in entry and not isinstance(entry["metadata"], dict):
        reasons.append("/metadata: must be a JSON object")
    path = entry.get("publisher_path")
    if path is not None and not (
        isinstance(path, list) and all(isinstance(name, str) and name.strip() for name in path)
    ):
        reasons.append("/publisher_path: must be a list of names")
    return reasons


def _under_metadata(reason: str) -> str:
    """ "/title: …" → "/metadata/title: …"; the metadata root "/: …" → "/metadata: …"."""
    return "/metadata" + (reason[1:] if reason.startswith("/:") else reason)
