"""Value rules shared by the mappers: each turns a messy source value into one our schema
accepts, or returns None (or empty) when the value cannot be expressed faithfully, so the caller
omits the field instead of inventing a value.

The patterns and limits are read from `schemas/dataset.schema.json` itself, so the cleaners and
the validator cannot drift apart.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from typing import Any, Literal

from registry.datasets.validation import load_schema

SCHEMA: dict[str, Any] = load_schema("dataset.schema.json")

_PROPS = SCHEMA["properties"]
_DIST = SCHEMA["$defs"]["distribution"]["properties"]
TIMESTAMP_RE = re.compile(_PROPS["modified"]["pattern"])
DATE_RE = re.compile(_PROPS["temporal"]["properties"]["start"]["pattern"])
URI_RE = re.compile(_PROPS["landing_page"]["pattern"])
EMAIL_RE = re.compile(_PROPS["contact_point"]["properties"]["email"]["pattern"])
PHONE_RE = re.compile(_PROPS["contact_point"]["properties"]["telephone"]["pattern"])
LANGUAGE_RE = re.compile(_PROPS["language"]["items"]["pattern"])
SPATIAL_CODE_RE = re.compile(_PROPS["spatial"]["properties"]["code"]["pattern"])
THEMES: frozenset[str] = frozenset(_PROPS["themes"]["items"]["enum"])
UPDATE_CYCLES: frozenset[str] = frozenset(_PROPS["update_cycle"]["enum"])
MAX_URI = _PROPS["landing_page"]["maxLength"]
MAX_KEYWORDS = _PROPS["keywords"]["maxItems"]
MAX_KEYWORD = _PROPS["keywords"]["items"]["maxLength"]
MAX_DISTRIBUTIONS = _PROPS["distributions"]["maxItems"]
MAX_CONFORMS_TO = _PROPS["conforms_to"]["maxItems"]
MAX_SLUG = 120

_CJK_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def text(value: Any, max_length: int | None = None) -> str | None:
    """A stripped, non-empty string within `max_length`; over-long text is dropped, not cut,
    because a truncated licence note or description silently says something else."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or (max_length is not None and len(value) > max_length):
        return None
    return value


def language_of(value: str) -> Literal["zh", "en"]:
    """Our text fields are zh/en only: any Han character marks Chinese, anything else English."""
    return "zh" if _CJK_RE.search(value) else "en"


def localized(value: Any) -> dict[str, str] | None:
    """{"zh"|"en": text}. No length limit here: the validator reports an over-long title."""
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    return {language_of(value): value}


def uri(value: Any) -> str | None:
    value = text(value, MAX_URI)
    return value if value is not None and URI_RE.match(value) else None


def timestamp(value: Any) -> str | None:
    """A date or RFC 3339 date-time as the schema has it; a bare year or an interval is dropped."""
    value = text(value)
    if value is None:
        return None
    if " " in value and TIMESTAMP_RE.match(value.replace(" ", "T", 1)):
        value = value.replace(" ", "T", 1)
    return value if TIMESTAMP_RE.match(value) else None


def keywords(values: Any) -> list[str]:
    """Unique (first spelling kept), non-empty, ≤ 100 chars each, at most 100 of them."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list):
        return []
    seen: dict[str, None] = {}
    for raw in values:
        keyword = text(raw, MAX_KEYWORD)
        if keyword is not None:
            seen.setdefault(keyword, None)
    return list(seen)[:MAX_KEYWORDS]


def _calendar_bound(value: str, *, end: bool) -> str | None:
    """Widen a year or year-month to the first (start) or last (end) day of that span.

    "2010/2015" covers 2010-01-01 to 2015-12-31 exactly: the same span at day precision,
    not a guess. Date-times keep their date.
    """
    value = value.strip()
    if re.fullmatch(r"\d{4}", value):
        return f"{value}-12-31" if end else f"{value}-01-01"
    match = re.fullmatch(r"(\d{4})-(0[1-9]|1[0-2])", value)
    if match:
        year, month = int(match[1]), int(match[2])
        day = calendar.monthrange(year, month)[1] if end else 1
        return f"{year:04d}-{month:02d}-{day:02d}"
    date = value[:10]
    return date if DATE_RE.match(date) and TIMESTAMP_RE.match(value) else None


def temporal(value: Any) -> dict[str, str] | None:
    """An ISO 8601 "start/end" interval ("..", or empty, is an open side); durations are dropped."""
    value = text(value)
    if value is None or value.count("/") != 1:
        return None
    start_raw, end_raw = value.split("/")
    span = {
        name: bound
        for name, raw, is_end in (("start", start_raw, False), ("end", end_raw, True))
        if raw.strip() not in ("", "..") and (bound := _calendar_bound(raw, end=is_end))
    }
    return span or None


def temporal_from_bounds(start: Any, end: Any) -> dict[str, str] | None:
    span = {}
    if isinstance(start, str) and (bound := _calendar_bound(start, end=False)):
        span["start"] = bound
    if isinstance(end, str) and (bound := _calendar_bound(end, end=True)):
        span["end"] = bound
    return span or None


_BBOX_RE = re.compile(r"^\s*-?\d+(\.\d+)?(\s*,\s*-?\d+(\.\d+)?){3}\s*$")


def spatial(value: Any) -> dict[str, str] | None:
    """A place name or a place URI. Bounding boxes and GeoJSON are dropped: the schema has no
    geometry, and a coordinate list is no use as a searchable place *name*."""
    value = text(value)
    if value is None or _BBOX_RE.match(value) or value.startswith(("{", "[")):
        return None
    if re.match(r"^https?://", value):
        return {"uri": value} if uri(value) else None
    name = text(value, _PROPS["spatial"]["properties"]["name"]["maxLength"])
    return {"name": name} if name else None


# ISO 8601 repeating intervals (Project Open Data accrualPeriodicity), words, and the EU
# frequency vocabulary's codes. R/PT1S is POD's own spelling of "continuously updated".
_CYCLE_BY_PERIOD = {
    "R/PT1S": "realtime",
    "R/P1D": "daily",
    "R/P1W": "weekly",
    "R/P7D": "weekly",
    "R/P1M": "monthly",
    "R/P3M": "quarterly",
    "R/P6M": "semiannual",
    "R/P1Y": "annual",
    "R/P12M": "annual",
}
_CYCLE_BY_WORD = {
    "continuous": "realtime",
    "cont": "realtime",
    "update_cont": "realtime",
    "realtime": "realtime",
    "real-time": "realtime",
    "daily": "daily",
    "weekly": "weekly",
    "monthly": "monthly",
    "quarterly": "quarterly",
    "semiannual": "semiannual",
    "semi-annual": "semiannual",
    "semiannually": "semiannual",
    "annual_2": "semiannual",
    "annual": "annual",
    "annually": "annual",
    "yearly": "annual",
    "irregular": "irregular",
    "irreg": "irregular",
    "never": "once",
    "once": "once",
}


def update_cycle(value: Any) -> str | None:
    """Map a frequency to our enum; any other repeating interval (R/P2Y, R/PT1H…) is "irregular"
    because the enum has no such cycle; unknown words are dropped."""
    value = text(value)
    if value is None:
        return None
    period = value.upper()
    if period in _CYCLE_BY_PERIOD:
        return _CYCLE_BY_PERIOD[period]
    if period.startswith("R/P"):
        return "irregular"
    word = value.rstrip("/").rsplit("/", 1)[-1].lower()  # EU frequency URIs end with the code
    return _CYCLE_BY_WORD.get(word)


# Free-text theme words that name an EU data theme unambiguously. Anything else is dropped:
# "geospatial" or "Medicare" may suggest a theme, but choosing one would be our claim, not theirs.
_THEME_BY_WORD = {
    "agriculture": "AGRI",
    "agriculture, fisheries, forestry and food": "AGRI",
    "economy": "ECON",
    "economy and finance": "ECON",
    "finance": "ECON",
    "education": "EDUC",
    "education, culture and sport": "EDUC",
    "energy": "ENER",
    "environment": "ENVI",
    "government": "GOVE",
    "government and public sector": "GOVE",
    "health": "HEAL",
    "international": "INTR",
    "international issues": "INTR",
    "justice": "JUST",
    "justice, legal system and public safety": "JUST",
    "public safety": "JUST",
    "law enforcement": "JUST",
    "regions and cities": "REGI",
    "population and society": "SOCI",
    "science": "TECH",
    "science and technology": "TECH",
    "technology": "TECH",
    "transport": "TRAN",
    "transportation": "TRAN",
    "travel and transportation": "TRAN",
    "provisional data": "OP_DATPRO",
}


def theme(value: Any) -> str | None:
    """An EU theme code, given as the code, an EU theme URI, or an unambiguous word."""
    value = text(value)
    if value is None:
        return None
    code = value.rstrip("/").rsplit("/", 1)[-1].upper()
    if code in THEMES:
        return code
    return _THEME_BY_WORD.get(value.lower())


def themes(values: Any) -> list[str]:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list):
        return []
    return list(dict.fromkeys(code for raw in values if (code := theme(raw))))


def language_tag(value: Any) -> str | None:
    """BCP 47 with conventional case (en-us → en-US); tags that do not parse are dropped."""
    value = text(value)
    if value is None:
        return None
    head, *rest = value.replace("_", "-").split("-")
    parts = [head.lower()]
    for part in rest:
        if len(part) == 2 and part.isalpha():
            parts.append(part.upper())
        elif len(part) == 4 and part.isalpha():
            parts.append(part.title())
        else:
            parts.append(part.lower())
    tag = "-".join(parts)
    return tag if LANGUAGE_RE.match(tag) else None


def languages(values: Any) -> list[str]:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list):
        return []
    return list(dict.fromkeys(tag for raw in values if (tag := language_tag(raw))))


def email(value: Any) -> str | None:
    value = text(value)
    if value is None:
        return None
    if value.lower().startswith("mailto:"):
        value = value[len("mailto:") :].split("?", 1)[0].strip()
    return value if len(value) <= 300 and EMAIL_RE.match(value) else None


def contact_point(name: Any, mail: Any, telephone: Any = None, url: Any = None) -> dict[str, str]:
    contact = {
        "name": text(name, 200),
        "email": email(mail),
        "telephone": tel if (tel := text(telephone, 50)) and PHONE_RE.match(tel) else None,
        "url": uri(url),
    }
    return {key: value for key, value in contact.items() if value is not None}


def byte_size(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and 0 <= value <= _DIST["byte_size"]["maximum"]:
        return value
    return None


_SHA256_RE = re.compile(r"^(?:sha-?256:)?([0-9a-fA-F]{64})$", re.IGNORECASE)


def sha256_checksum(value: Any) -> dict[str, str] | None:
    """Only a real SHA-256 (64 hex, optionally "sha256:"-prefixed) becomes a checksum; CKAN's
    `hash` is free text and often MD5 or SHA-1, which the schema does not accept."""
    value = text(value)
    match = _SHA256_RE.match(value) if value else None
    return {"algorithm": "sha256", "value": match[1].lower()} if match else None


def slugify(value: Any) -> str | None:
    """A readable slug candidate: ASCII-folded, lower-case [a-z0-9-], ≤ 120 chars; None when
    nothing readable is left (e.g. a title entirely in Chinese)."""
    if not isinstance(value, str):
        return None
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")
    slug = slug[:MAX_SLUG].rstrip("-")
    return slug or None


_CLASSIFICATION_LEVELS = ("category", "item", "subitem", "detail")
_CLASSIFICATION_SPLIT_RE = re.compile(r"\s*[›>＞/／|｜]\s*")
MAX_CLASSIFICATION_LABEL = _PROPS["classification"]["properties"]["category"]["maxLength"]


def classification(value: Any) -> dict[str, str] | None:
    """资源分类 as 类 / 项 / 目 / 细目. A source gives it as an object with those levels, a list
    of labels outermost first, or one string with separators ("交通 › 城市交通 › 公共自行车",
    "交通/城市交通"). More than four levels, or a label over the limit, cannot be expressed
    without changing what a level means, so the whole value is dropped."""
    if isinstance(value, dict):
        labels = [value.get(level) for level in _CLASSIFICATION_LEVELS if value.get(level)]
    elif isinstance(value, list):
        labels = value
    elif isinstance(value, str):
        labels = _CLASSIFICATION_SPLIT_RE.split(value.strip())
    else:
        return None
    cleaned = [text(label, MAX_CLASSIFICATION_LABEL) for label in labels]
    if not cleaned or len(cleaned) > len(_CLASSIFICATION_LEVELS) or None in cleaned:
        return None
    return dict(zip(_CLASSIFICATION_LEVELS, cleaned, strict=False))  # type: ignore[arg-type]
