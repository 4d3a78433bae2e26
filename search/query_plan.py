"""Where ranking is decided: a search request becomes one normalised, engine-neutral plan.

Every engine (the embedded Tantivy index, the OpenSearch/Elasticsearch cluster) only
*translates* a `QueryPlan`; none of them decides what matches, how fields are weighted, who may
see what, or how pages follow each other. Both the index side (`index_fields`: which text goes
into which field, analysed how) and the query side (`build_plan`) live here, so they cannot
drift apart.

Ranking rules (issue 11, failure classes 1–7):

* **Fields and boosts** (`TEXT_GROUPS`): title above keywords, department (publisher names)
  and classification (themes, catalogue categories) above description. A new text field of
  `SearchDocument` is indexed in the "other" group at once; giving it a boost is one entry.
* **Whole words above fragments above prefixes.** Every group is indexed twice: *words* (jieba
  precise segmentation + compound parts; English Snowball stems) and *fragments* (CJK bigrams).
  A query word matching a whole indexed word scores `WORD`; only inside a longer word
  (市政 in 天津市政府) `FRAGMENT`; an English word still being typed as a prefix `PREFIX` (of
  the short, boosted fields only: completing against every description word is costly and
  rarely what the user is typing). So
  "death register" ranks the title "Death register" above "Registration …".
* **Saturation.** Engines score with BM25 (term frequency saturates, k1 = 1.2), each query term
  takes the best of its field matches plus `TIE_BREAKER` × the others (dis-max: a term found in
  the title and again in a description that copies the title is not counted twice at full
  weight), and a description that repeats the title has that copy removed before indexing.
* **Fallback.** When the AND of all terms finds nothing, `fallback` matches any of the finer
  jieba sub-words (公交车 → 公交; 地铁 → 地, 铁), ranked first by how many of them match
  (`FALLBACK_PER_TERM` per matching term dominates BM25), and the results say which looser
  query was used.

Limits: the query text is cut to `MAX_QUERY_CHARS` characters and `MAX_QUERY_TERMS` terms
(the plan says so in `truncated`), a cursor may reach `MAX_OFFSET` hits deep.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from search.analysis import (
    ENGLISH_STOPWORDS,
    QueryTerm,
    _common_prefix,
    _segment_chinese,
    cjk_bigrams,
    fragment_tokens,
    is_cjk_token,
    search_subwords,
    stem,
    word_tokens,
)
from search.documents import (
    FACET_SOURCES,
    InvalidCursor,
    SearchDocument,
    SearchQuery,
    issued_key,
    modified_key,
    title_key,
)

MAX_QUERY_CHARS = 200  # longer input is cut here (documented in the API)
MAX_QUERY_TERMS = 16  # analysed terms beyond this are dropped
MAX_OFFSET = 10_000  # the deepest a cursor may page (as Elasticsearch's max_result_window)

WORD = 1.0  # a query word equal to an indexed word
FRAGMENT = 0.35  # a query word found only inside a longer word (bigram phrase)
PREFIX = 0.3  # the word still being typed, as a prefix of an indexed word
PREFIX_MIN_BOOST = 3.0  # a word being typed completes in titles, keywords, departments, topics
TIE_BREAKER = 0.2  # dis-max: weight of a term's matches beyond its best field
FALLBACK_PER_TERM = 1000.0  # fallback: each matching sub-word counts before any BM25 score

Kind = Literal["term", "phrase", "prefix"]


@dataclass(frozen=True)
class TextGroup:
    """A weighted group of document fields, indexed as ``<name>_w`` (words) and ``<name>_g``
    (fragments)."""

    name: str
    sources: tuple[str, ...]
    boost: float


TEXT_GROUPS: tuple[TextGroup, ...] = (
    TextGroup("title", ("title_zh", "title_en"), 6.0),
    TextGroup("keywords", ("keywords",), 4.0),
    TextGroup("department", ("publisher_names", "department_names"), 4.0),
    TextGroup("classification", ("themes", "classification", "resource_category",
                                 "industry", "topics", "subjects"), 4.0),
    TextGroup("description", ("description_zh", "description_en"), 1.0),
    TextGroup("other", (), 1.0),  # every other text field of the document
)
# Document fields that are identifiers, codes or dates rather than text to search.
NON_TEXT_FIELDS = frozenset({
    "dataset_id", "slug", "version", "state", "visibility", "organization_id",
    "organization_path", "formats", "license", "sharing_type", "open_attribute",
    "update_cycle", "data_grade", "region", "issued", "modified", "analysed",
})
_GROUPED = {source for group in TEXT_GROUPS for source in group.sources}


def text_field_names() -> list[str]:
    """Every index text field: ``<group>_w`` and ``<group>_g`` for each group."""
    return [f"{g.name}_{kind}" for g in TEXT_GROUPS for kind in ("w", "g")]


# ---------------------------------------------------------------- index side


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str) and v.strip()]
    return []


def group_texts(doc: SearchDocument | Mapping[str, object]) -> dict[str, list[str]]:
    """The text of each group: the mapped fields, and every other text field in "other".
    A description that merely repeats the title loses that copy (saturation, class 5)."""
    texts: dict[str, list[str]] = {g.name: [] for g in TEXT_GROUPS}
    for group in TEXT_GROUPS:
        for source in group.sources:
            texts[group.name].extend(_texts(doc.get(source)))
    for name, value in doc.items():
        if name not in _GROUPED and name not in NON_TEXT_FIELDS:
            texts["other"].extend(_texts(value))
    titles = [t.strip().casefold() for t in texts["title"]]
    texts["description"] = [_without_copies(d, titles) for d in texts["description"]]
    return texts


def _without_copies(description: str, titles: list[str]) -> str:
    folded = description.casefold()
    for title in titles:
        if title and title in folded:
            start = folded.index(title)
            description = description[:start] + " " + description[start + len(title):]
            folded = description.casefold()
    return description


def index_fields(doc: SearchDocument | Mapping[str, object]) -> dict[str, str]:
    """Index field name → space-separated tokens (the engines split on whitespace only)."""
    fields: dict[str, str] = {}
    for name, texts in group_texts(doc).items():
        fields[f"{name}_w"] = " ".join(t for text in texts for t in word_tokens(text))
        fields[f"{name}_g"] = " ".join(t for text in texts for t in fragment_tokens(text))
    return fields


def modified_stamp(value: datetime | date | None) -> int:
    """modified as YYYYMMDDHHMMSS (0 when missing): a numeric sort and range key."""
    key = modified_key(value)
    return int(re.sub(r"\D", "", key)) if key else 0


def issued_day(value: date | None) -> int:
    key = issued_key(value)
    return int(key.replace("-", "")) if key else 0


def sort_values(doc: SearchDocument | Mapping[str, object]) -> dict[str, str]:
    """Total-order sort keys: the primary key, then the dataset id (unique), as one string
    (``modified``: zero-padded stamp; ``title``: the case-folded title)."""
    dataset_id = str(doc["dataset_id"])
    stamp = modified_stamp(doc.get("modified"))  # type: ignore[arg-type]
    return {"modified": f"{stamp:014d}\x1f{dataset_id}",
            "title": f"{title_key(doc)}\x1f{dataset_id}"}  # type: ignore[arg-type]


# ---------------------------------------------------------------- query side


@dataclass(frozen=True)
class Match:
    """One way a query term can match: ``term`` (a whole indexed token), ``phrase`` (the
    tokens consecutively) or ``prefix`` (the last token as a prefix), in one index field."""

    field: str
    kind: Kind
    tokens: tuple[str, ...]
    boost: float


@dataclass(frozen=True)
class TermPlan:
    """A query term: matched when any of ``matches`` matches (scored dis-max)."""

    surface: str
    matches: tuple[Match, ...]


@dataclass(frozen=True)
class TextPlan:
    """``all`` terms required (the normal query), or any of them, ranked by how many match
    (the fallback)."""

    terms: tuple[TermPlan, ...]
    require_all: bool


@dataclass(frozen=True)
class Terms:
    """Field has one of ``values``. Fields: state, visibility, organization_id, and the facet
    names of `FACET_SOURCES`."""

    field: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Range:
    """Numeric field (``modified`` stamp, ``issued`` day) within [gte, lte]."""

    field: str
    gte: int | None
    lte: int | None


@dataclass(frozen=True)
class AllOf:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Filter, ...]


Filter = Terms | Range | AllOf | AnyOf


@dataclass(frozen=True)
class SortPlan:
    """``name`` is the effective sort; ``key`` is "score", "modified" or "title". Ties break
    on the dataset id in the same direction, so the order is total on every engine."""

    name: str
    key: str
    descending: bool


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: ``offset`` hits in, after the hit whose sort key is
    ``last`` ([primary, dataset_id]; the cluster's search_after)."""

    offset: int
    last: tuple[str | float, str]


@dataclass(frozen=True)
class QueryPlan:
    q: str
    truncated: bool
    text: TextPlan | None
    fallback: TextPlan | None
    highlight_terms: tuple[QueryTerm, ...]
    filter: AllOf
    facets: tuple[str, ...]
    facet_limit: int
    sort: SortPlan
    cursor: Cursor | None
    limit: int
    tie_breaker: float = TIE_BREAKER


@dataclass(frozen=True)
class _Word:
    surface: str
    cjk: bool
    typing: bool  # the last English word, not yet followed by a space


def _query_words(q: str) -> tuple[list[_Word], bool]:
    """The analysed words of a query, at most MAX_QUERY_TERMS, and whether any were dropped."""
    pieces = re.findall(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[^\W_\u3400-\u4dbf"
                        r"\u4e00-\u9fff\uf900-\ufaff]+", q.casefold())
    words = [p for p in pieces if is_cjk_token(p) or p not in ENGLISH_STOPWORDS] or pieces
    still_typing = bool(q) and not q[-1].isspace()
    out: list[_Word] = []
    for position, piece in enumerate(words):
        if is_cjk_token(piece):
            out.extend(_Word(w, True, False) for w in _segment_chinese(piece))
        else:
            out.append(_Word(piece, False, still_typing and position == len(words) - 1))
    unique = list(dict.fromkeys(out))
    return unique[:MAX_QUERY_TERMS], len(unique) > MAX_QUERY_TERMS


def _term_plan(word: _Word) -> TermPlan:
    matches: list[Match] = []
    for group in TEXT_GROUPS:
        w, g = f"{group.name}_w", f"{group.name}_g"
        if word.cjk:
            matches.append(Match(w, "term", (word.surface,), group.boost * WORD))
            if len(word.surface) == 1:
                matches.append(Match(g, "prefix", (word.surface,), group.boost * FRAGMENT))
            else:
                matches.append(Match(g, "phrase", tuple(cjk_bigrams(word.surface)),
                                     group.boost * FRAGMENT))
        else:
            stemmed = stem(word.surface)
            matches.append(Match(w, "term", (stemmed,), group.boost * WORD))
            if word.typing and group.boost >= PREFIX_MIN_BOOST:
                prefix = _common_prefix(word.surface, stemmed) or stemmed
                matches.append(Match(w, "prefix", (prefix,), group.boost * PREFIX))
    return TermPlan(word.surface, tuple(matches))


def _highlight_term(word: _Word) -> QueryTerm:
    if word.cjk:
        tokens = (word.surface,) if len(word.surface) == 1 else tuple(cjk_bigrams(word.surface))
        return QueryTerm(tokens, prefix=len(word.surface) == 1, surface=word.surface)
    stemmed = stem(word.surface)
    if word.typing:
        return QueryTerm((_common_prefix(word.surface, stemmed) or stemmed,), prefix=True,
                         surface=word.surface)
    return QueryTerm((stemmed,), prefix=False, surface=word.surface)


def _fallback_words(words: list[_Word]) -> list[_Word]:
    """The finer words to try when all of ``words`` together found nothing: each Chinese word
    split into its sub-words (a word without any stays whole); a query of one two-character
    word (地铁) into its characters. Empty when nothing would change and there is only one word
    (nothing looser to try)."""
    finer: list[_Word] = []
    changed = False
    for word in words:
        parts = search_subwords(word.surface) if word.cjk else []
        if not parts and word.cjk and len(words) == 1 and len(word.surface) == 2:
            parts = list(word.surface)
        if parts:
            changed = True
            finer.extend(_Word(p, True, False) for p in parts)
        else:
            finer.append(word)
    if not changed and len(words) < 2:
        return []
    return list(dict.fromkeys(finer))[:MAX_QUERY_TERMS]


def _visibility(query: SearchQuery) -> Filter:
    states = ("published", "withdrawn") if query.include_withdrawn else ("published",)
    viewer = query.viewer
    if not viewer.government:
        return AllOf((Terms("visibility", ("public",)), Terms("state", states)))
    listed = Terms("state", states)
    if not viewer.organization_ids:
        return listed
    own_drafts = AllOf((Terms("state", ("draft",)),
                        Terms("organization_id", tuple(sorted(viewer.organization_ids)))))
    return AnyOf((listed, own_drafts))


def _end_of_day(value: datetime | date) -> int:
    if isinstance(value, datetime):
        return modified_stamp(value)
    return int(value.strftime("%Y%m%d")) * 1_000_000 + 235959


def _filters(query: SearchQuery) -> AllOf:
    items: list[Filter] = [_visibility(query)]
    for facet in sorted(query.filters):
        values = tuple(dict.fromkeys(v.upper() if facet == "format" else v
                                     for v in query.filters[facet]))
        if values:
            items.append(Terms(facet, values))
    if query.issued_from is not None or query.issued_to is not None:
        low = issued_day(query.issued_from) if query.issued_from is not None else 1
        high = issued_day(query.issued_to) if query.issued_to is not None else None
        items.append(Range("issued", max(low, 1), high))
    if query.modified_from is not None or query.modified_to is not None:
        low = modified_stamp(query.modified_from) if query.modified_from is not None else 1
        high = _end_of_day(query.modified_to) if query.modified_to is not None else None
        items.append(Range("modified", max(low, 1), high))
    return AllOf(tuple(items))


SORTS: dict[str, tuple[str, bool]] = {
    "relevance": ("score", True),
    "modified": ("modified", False),
    "-modified": ("modified", True),
    "title": ("title", False),
}


def _sort(query: SearchQuery, has_text: bool) -> SortPlan:
    name = query.sort
    if name == "relevance" and not has_text:
        name = "-modified"  # without text every score is equal: newest first
    key, descending = SORTS[name]
    return SortPlan(name, key, descending)


def build_plan(query: SearchQuery) -> QueryPlan:
    """The plan of one request. Raises ValueError (unknown filter/facet/sort, bad limit) or
    InvalidCursor; both name what is wrong and map to a 400."""
    query.validate()
    raw = query.q or ""
    cut = raw[:MAX_QUERY_CHARS]
    words, dropped = _query_words(cut) if cut.strip() else ([], False)
    truncated = len(raw) > MAX_QUERY_CHARS or dropped
    text = TextPlan(tuple(_term_plan(w) for w in words), require_all=True) if words else None
    fallback_words = _fallback_words(words) if words else []
    fallback = (TextPlan(tuple(_term_plan(w) for w in fallback_words), require_all=False)
                if fallback_words else None)
    highlight = tuple(_highlight_term(w) for w in (*words, *fallback_words))
    sort = _sort(query, text is not None)
    cursor = decode_cursor(query.cursor, sort.name) if query.cursor else None
    return QueryPlan(q=cut, truncated=truncated, text=text, fallback=fallback,
                     highlight_terms=tuple(dict.fromkeys(highlight)), filter=_filters(query),
                     facets=tuple(query.facets), facet_limit=query.facet_limit, sort=sort,
                     cursor=cursor, limit=query.limit)


# ---------------------------------------------------------------- cursors


def encode_cursor(sort: str, offset: int, last: Sequence[str | float]) -> str:
    """An opaque cursor: the sort, how many hits precede the next page, and the sort key of
    the last hit ([primary, dataset_id], what the cluster needs for search_after)."""
    raw = json.dumps({"s": sort, "o": offset, "k": list(last)}, separators=(",", ":"),
                     ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> Cursor:
    """Check every part of a cursor (finding F9: {"s":"-modified","k":[null,null]} was a 500):
    anything but a cursor this search issued for this sort is InvalidCursor."""
    if len(cursor) > 2048:
        raise InvalidCursor("cursor is too long")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise InvalidCursor("malformed cursor") from exc
    if not isinstance(data, dict) or set(data) != {"s", "o", "k"}:
        raise InvalidCursor("malformed cursor")
    if data["s"] != sort:
        raise InvalidCursor("cursor belongs to another sort order")
    offset, last = data["o"], data["k"]
    if type(offset) is not int or not 0 < offset <= MAX_OFFSET:
        raise InvalidCursor(f"cursor offset must be between 1 and {MAX_OFFSET}")
    if not isinstance(last, list) or len(last) != 2 or not isinstance(last[1], str):
        raise InvalidCursor("malformed cursor key")
    primary = last[0]
    if isinstance(primary, bool) or not isinstance(primary, (str, int, float)):
        raise InvalidCursor("malformed cursor key")
    return Cursor(offset=offset, last=(primary, last[1]))


__all__ = [
    "FACET_SOURCES",
    "MAX_OFFSET",
    "MAX_QUERY_CHARS",
    "MAX_QUERY_TERMS",
    "TEXT_GROUPS",
    "AllOf",
    "AnyOf",
    "Cursor",
    "Filter",
    "Match",
    "QueryPlan",
    "Range",
    "SortPlan",
    "TermPlan",
    "Terms",
    "TextGroup",
    "TextPlan",
    "build_plan",
    "decode_cursor",
    "encode_cursor",
    "index_fields",
    "sort_values",
]
