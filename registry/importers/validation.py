"""The schema check of a mapped record: the single place where a mapping becomes accepted or
rejected.

The rules and the messages are those of `registry.datasets.validation` (the validator the API
uses), so an import and a POST reject the same metadata for the same reasons. The only
addition is a yes/no pre-check with `jsonschema_rs` on the hot path: pure-Python jsonschema
manages about 3,000 records/s, which alone would eat an import's whole time budget, while
almost every record is valid and needs no message at all.
"""

from __future__ import annotations

from typing import Any

from registry.datasets.validation import metadata_errors, metadata_surely_valid
from registry.importers.outcomes import ImportRecord, Outcome, RejectedRecord, Visibility


def validation_errors(metadata: Any) -> list[str]:
    """Every problem as "json/pointer: message" (pointers into the metadata); empty when valid."""
    if metadata_surely_valid(metadata):
        return []
    return [f"{error.pointer or '/'}: {error.detail}"
            for error in metadata_errors(metadata, prefix="")]


def finish(position: int, external_id: str, slug_hint: str | None, metadata: dict[str, Any],
           visibility: Visibility, publisher_path: tuple[str, ...] = (), *,
           source: Any = None) -> Outcome:
    """Validate a mapped record; `source` (the entry as read) travels with a rejection."""
    reasons = validation_errors(metadata)
    if reasons:
        return RejectedRecord(position, external_id, reasons, source)
    return ImportRecord(external_id, slug_hint, metadata, visibility, publisher_path, position)
