"""What a reader yields for each source entry: an `ImportRecord` ready to publish, or a
`RejectedRecord` saying why not. Plain data, so the reader process can send them to the writer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Visibility = Literal["public", "government"]
Format = Literal["jsonl", "datajson", "ckan"]
FORMATS: tuple[Format, ...] = ("jsonl", "datajson", "ckan")


@dataclass(frozen=True)
class ImportRecord:
    """One source entry mapped onto our schema; `metadata` is valid, the rest guides publishing.
    `position` is where it was in the file (1-based entry or line number), for error reports."""

    external_id: str
    slug_hint: str | None
    metadata: dict[str, Any]
    visibility: Visibility
    publisher_path: tuple[str, ...] = ()
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class RejectedRecord:
    """A source entry that cannot become a valid dataset; `reasons` are "json/pointer: message".

    `source` is the entry as the file had it (a parsed object, or the raw line when it was not
    JSON), so a rejects file can be corrected and imported again. Not part of equality: two
    rejections are the same when they say the same thing about the same position."""

    position: int
    external_id: str | None
    reasons: list[str] = field(default_factory=list)
    source: Any = field(default=None, compare=False, repr=False)


Outcome = ImportRecord | RejectedRecord
