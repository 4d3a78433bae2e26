"""The flat document the registry hands to search, and the query/result types of the interface.

Kept free of any database or registry import so that ``registry`` can build these from its own
models and every backend can consume them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal, NotRequired, TypedDict

State = Literal["draft", "published", "withdrawn"]
Visibility = Literal["public", "government"]
SortOrder = Literal["relevance", "modified", "-modified", "title"]


class PreAnalysed(TypedDict):
    """Index text computed ahead of time (bulk import does it in its reader process, off the
    writer's core): `search.analysis.text_tokens_of` of the document's own text fields."""

    title: str
    keywords: str
    description: str


class SearchDocument(TypedDict):
    dataset_id: str
    slug: str
    version: int
    state: State
    visibility: Visibility
    organization_id: str
    organization_path: list[str]
    # The owning organisation and its parents, then the publisher as the entry names it.
    publisher_names: list[str]
    title_zh: str | None
    title_en: str | None
    description_zh: str | None
    description_en: str | None
    keywords: list[str]
    themes: list[str]
    # 资源分类 labels, outermost first (类 / 项 / 目 / 细目): the catalogue's own topic words.
    classification: NotRequired[list[str]]
    formats: list[str]
    license: str | None
    sharing_type: str | None
    open_attribute: str | None
    update_cycle: str | None
    data_grade: str | None
    region: str | None
    issued: date | None
    modified: datetime | date | None
    analysed: NotRequired[PreAnalysed]


# Filter/facet name -> the document field it reads. "publisher" is the organisation path, so a
# publisher filter or facet count includes every sub-organisation.
FACET_SOURCES: Mapping[str, str] = {
    "publisher": "organization_path",
    "theme": "themes",
    "format": "formats",
    "keyword": "keywords",
    "license": "license",
    "sharing_type": "sharing_type",
    "open_attribute": "open_attribute",
    "update_cycle": "update_cycle",
    "data_grade": "data_grade",
    "region": "region",
}
FACET_FIELDS: tuple[str, ...] = tuple(FACET_SOURCES)


def facet_values(doc: SearchDocument) -> list[tuple[str, str]]:
    """(field, value) pairs of one document, multi-valued fields expanded, duplicates removed."""
    pairs: dict[tuple[str, str], None] = {}
    for facet, source in FACET_SOURCES.items():
        raw = doc.get(source)  # type: ignore[misc]
        values = raw if isinstance(raw, list) else [raw]
        for value in values:
            if value is None or value == "":
                continue
            text = str(value).upper() if facet == "format" else str(value)
            pairs[(facet, text)] = None
    return list(pairs)


def modified_key(value: datetime | date | None) -> str | None:
    """A sortable text form of ``modified``: aware times in UTC, dates as midnight."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    return value.strftime("%Y-%m-%dT00:00:00")


def issued_key(value: date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.date()
    return value.isoformat()


def title_key(doc: SearchDocument) -> str:
    """Sort key for "title": the Chinese title when there is one (the catalogue's main
    language), otherwise the English one; case-folded so "apple" and "Apple" sort together."""
    return (doc.get("title_zh") or doc.get("title_en") or "").casefold()


@dataclass(frozen=True)
class Viewer:
    """Who is searching. Anonymous citizens see public, published entries only; government
    users also see government-only entries, and drafts of their own organisations."""

    government: bool = False
    organization_ids: frozenset[str] = frozenset()

    @classmethod
    def anonymous(cls) -> Viewer:
        return cls()

    @classmethod
    def government_user(cls, organization_ids: Sequence[str]) -> Viewer:
        return cls(government=True, organization_ids=frozenset(organization_ids))


@dataclass(frozen=True)
class SearchQuery:
    q: str = ""
    filters: Mapping[str, Sequence[str]] = field(default_factory=dict)
    issued_from: date | None = None
    issued_to: date | None = None
    modified_from: datetime | date | None = None
    modified_to: datetime | date | None = None
    sort: SortOrder = "relevance"
    limit: int = 20
    cursor: str | None = None
    facets: Sequence[str] = ()
    facet_limit: int = 50
    viewer: Viewer = field(default_factory=Viewer)
    include_withdrawn: bool = False

    def validate(self) -> None:
        """Reject unknown filter/facet names and nonsensical limits before any SQL is built."""
        unknown = [name for name in (*self.filters, *self.facets) if name not in FACET_SOURCES]
        if unknown:
            raise ValueError(f"unknown filter or facet field(s): {', '.join(sorted(unknown))}")
        if self.sort not in ("relevance", "modified", "-modified", "title"):
            raise ValueError(f"unknown sort order: {self.sort}")
        if not 1 <= self.limit <= 1000:
            raise ValueError("limit must be between 1 and 1000")


@dataclass(frozen=True)
class Hit:
    dataset_id: str
    slug: str
    score: float
    highlights: dict[str, str]


@dataclass(frozen=True)
class SearchResults:
    total: int
    hits: list[Hit]
    facets: dict[str, list[tuple[str, int]]]
    next_cursor: str | None
    # Help when the query as typed found nothing (see search.query_plan): the looser query
    # whose results these are, a suggestion to try, and related topics.
    loosened_query: str | None = None
    suggestion: str | None = None
    related: list[str] = field(default_factory=list)
    truncated: bool = False  # the query was cut at MAX_QUERY_CHARS / MAX_QUERY_TERMS


class InvalidCursor(ValueError):
    """The cursor was not produced by this search (tampered, or from another sort order)."""


def encode_cursor(sort: str, key: Sequence[Any]) -> str:
    """Opaque keyset cursor: the sort order and the sort key of the last hit on the page."""
    raw = json.dumps({"s": sort, "k": list(key)}, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> list[Any]:
    """The [sort key, tie-breaker] of a cursor. Every part is checked (finding F9: a cursor
    decoding to {"s":"-modified","k":[null,null]} reached the SQL as NULLs and gave a 500)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key = data["k"]
        if data["s"] != sort or not isinstance(key, list):
            raise InvalidCursor("cursor belongs to another sort order")
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidCursor("malformed cursor") from exc
    if len(key) != 2 or any(isinstance(k, bool) or not isinstance(k, (str, int, float))
                            for k in key):
        raise InvalidCursor("malformed cursor key")
    return key
