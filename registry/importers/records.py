"""The outcome of mapping one source entry, the schema check, and the value rules shared by mappers.

Mappers (datajson, ckan) turn messy source values into values our schema accepts *before*
validation, dropping what cannot be expressed rather than guessing; validation then only catches
what is genuinely missing (a title, a description) and turns it into a `RejectedRecord`.

The patterns used for cleaning are read from `schemas/dataset.schema.json` itself, so the cleaners
and the validator cannot drift apart.
"""

from __future__ import annotations

import calendar
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "dataset.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))

Visibility = Literal["public", "government"]
Format = Literal["jsonl", "datajson", "ckan"]


@dataclass(frozen=True)
class ImportRecord:
    """One source entry mapped onto our schema; `metadata` is valid, the rest guides publishing."""

    external_id: str
    slug_hint: str | None
    metadata: dict[str, Any]
    visibility: Visibility
    publisher_path: tuple[str, ...] = ()


@dataclass(frozen=True)
class RejectedRecord:
    """A source entry that cannot become a valid dataset; `reasons` are "json/pointer: message"."""

    position: int
    external_id: str | None
    reasons: list[str] = field(default_factory=list)


Outcome = ImportRecord | RejectedRecord


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


class _FastCheck(Protocol):
    def is_valid(self, instance: Any) -> bool: ...


@cache
def _reference_validator() -> Any:
    """jsonschema's Draft 2020-12 validator: the reference, and the source of error messages."""
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(SCHEMA)
    return Draft202012Validator(SCHEMA)


@cache
def _fast_check() -> _FastCheck:
    """A yes/no validator for the hot path: jsonschema_rs (≈100× faster) when it is installed.

    Pure-Python jsonschema manages about 3,000 records/s, which alone would eat the import's
    whole time budget. `validate_formats=False` matches jsonschema's default (format is an
    annotation in 2020-12; the `pattern`s carry the real rules).
    """
    try:
        import jsonschema_rs
    except ImportError:
        return _reference_validator()
    return jsonschema_rs.Draft202012Validator(SCHEMA, validate_formats=False)


def _escape_pointer_token(token: object) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _pointer(parts: Iterable[object]) -> str:
    return "".join("/" + _escape_pointer_token(p) for p in parts) or "/"


def _reasons_of(error: Any) -> list[str]:
    """Point "required" and "additionalProperties" errors at the property itself, not its parent,
    so a reader sees `/description: ...` rather than `/: 'description' is a required property`.
    """
    path = list(error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        missing = [name for name in error.validator_value if name not in instance]
        return [f"{_pointer([*path, name])}: is required" for name in missing]
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = [name for name in instance if name not in allowed]
        return [f"{_pointer([*path, name])}: is not a known field" for name in extra]
    return [f"{_pointer(path)}: {error.message}"]


def validation_errors(metadata: Any) -> list[str]:
    """Every schema violation as "json/pointer: message"; empty when the metadata is valid."""
    if _fast_check().is_valid(metadata):
        return []
    errors = sorted(
        _reference_validator().iter_errors(metadata), key=lambda e: list(map(str, e.absolute_path))
    )
    return [reason for error in errors for reason in _reasons_of(error)]


def finish(
    position: int,
    external_id: str,
    slug_hint: str | None,
    metadata: dict[str, Any],
    visibility: Visibility,
    publisher_path: tuple[str, ...] = (),
) -> Outcome:
    """Validate a mapped record: the single place where a mapping becomes accepted or rejected."""
    reasons = validation_errors(metadata)
    if reasons:
        return RejectedRecord(position, external_id, reasons)
    return ImportRecord(external_id, slug_hint, metadata, visibility, publisher_path)


# --------------------------------------------------------------------------------------------
# Dispatcher
# --------------------------------------------------------------------------------------------


def read_records(path: Path, fmt: Format) -> Iterator[Outcome]:
    """Read a catalogue file of the given format; one outcome per source entry, in file order."""
    # Imported here: the format modules import this one for the types and the value rules.
    from registry.importers import ckan, datajson, jsonl

    readers = {"jsonl": jsonl.read, "datajson": datajson.read, "ckan": ckan.read}
    try:
        reader = readers[fmt]
    except KeyError:
        raise ValueError(
            f"unknown import format {fmt!r}; expected one of {sorted(readers)}"
        ) from None
    outcomes = reader(Path(path))
    if fmt == "jsonl":  # our own format: lone surrogates are errors, reported at publish time
        return outcomes
    return (_with_surrogates_replaced(o) if isinstance(o, ImportRecord) else o for o in outcomes)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _replace_lone_surrogates(value: Any) -> Any:
    """Foreign catalogues sometimes escape broken text as lone UTF-16 surrogates ("\\udc92"),
    which are not Unicode and cannot be canonicalised; U+FFFD marks where the damage was."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value).replace("\x00", "")
    if isinstance(value, dict):
        return {_replace_lone_surrogates(k): _replace_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_lone_surrogates(v) for v in value]
    return value


def _with_surrogates_replaced(record: ImportRecord) -> ImportRecord:
    serialized = json.dumps(record.metadata, ensure_ascii=False)
    try:
        serialized.encode("utf-8")  # fails on lone surrogates
        if "\\u0000" not in serialized:  # json escapes U+0000
            return record
    except UnicodeEncodeError:
        pass
    return ImportRecord(record.external_id, record.slug_hint,
                        _replace_lone_surrogates(record.metadata), record.visibility,
                        record.publisher_path)


def read_text(path: Path) -> str:
    """Source catalogues are UTF-8, some with a byte-order mark that json.loads rejects."""
    return Path(path).read_text(encoding="utf-8-sig")


# --------------------------------------------------------------------------------------------
# Value rules shared by the mappers. Each returns None (or empty) when the value cannot be
# expressed faithfully: the caller then omits the field instead of inventing a value.
# --------------------------------------------------------------------------------------------

_PROPS = SCHEMA["properties"]
_DIST = SCHEMA["$defs"]["distribution"]["properties"]
TIMESTAMP_RE = re.compile(_PROPS["modified"]["pattern"])
DATE_RE = re.compile(_PROPS["temporal"]["properties"]["start"]["pattern"])
URI_RE = re.compile(_PROPS["landing_page"]["pattern"])
EMAIL_RE = re.compile(_PROPS["contact_point"]["properties"]["email"]["pattern"])
PHONE_RE = re.compile(_PROPS["contact_point"]["properties"]["telephone"]["pattern"])
LANGUAGE_RE = re.compile(_PROPS["language"]["items"]["pattern"])
FORMAT_RE = re.compile(_DIST["format"]["pattern"])
MEDIA_TYPE_RE = re.compile(_DIST["media_type"]["pattern"])
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


# --------------------------------------------------------------------------------------------
# Distribution formats and media types
# --------------------------------------------------------------------------------------------

# format code → (IANA media type or None, file extensions). Codes follow the EU file-type
# vocabulary where its code fits our pattern. The standard library's `mimetypes` misses most
# data formats (no xlsx, geojson, parquet…) and varies with /etc/mime.types, hence this table.
_FORMATS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "CSV": ("text/csv", ("csv",)),
    "TSV": ("text/tab-separated-values", ("tsv", "tab")),
    "XLS": ("application/vnd.ms-excel", ("xls",)),
    "XLSX": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ("xlsx",)),
    "ODS": ("application/vnd.oasis.opendocument.spreadsheet", ("ods",)),
    "JSON": ("application/json", ("json",)),
    "GEOJSON": ("application/geo+json", ("geojson",)),
    "JSON-LD": ("application/ld+json", ("jsonld",)),
    "XML": ("application/xml", ("xml",)),
    "RDF": ("application/rdf+xml", ("rdf",)),
    "TTL": ("text/turtle", ("ttl",)),
    "RSS": ("application/rss+xml", ("rss",)),
    "ATOM": ("application/atom+xml", ("atom",)),
    "HTML": ("text/html", ("html", "htm")),
    "TXT": ("text/plain", ("txt",)),
    "PDF": ("application/pdf", ("pdf",)),
    "DOC": ("application/msword", ("doc",)),
    "DOCX": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ("docx",)),
    "ZIP": ("application/zip", ("zip",)),
    "GZIP": ("application/gzip", ("gz", "tgz")),
    "KML": ("application/vnd.google-earth.kml+xml", ("kml",)),
    "KMZ": ("application/vnd.google-earth.kmz", ("kmz",)),
    "SHP": (None, ("shp",)),
    "GPKG": ("application/geopackage+sqlite3", ("gpkg",)),
    "PARQUET": ("application/vnd.apache.parquet", ("parquet",)),
    "TIFF": ("image/tiff", ("tif", "tiff")),
    "JPEG": ("image/jpeg", ("jpg", "jpeg")),
    "PNG": ("image/png", ("png",)),
    "DTA": ("application/x-stata", ("dta",)),
    "SAV": ("application/x-spss-sav", ("sav",)),
    "SAS7BDAT": ("application/x-sas-data", ("sas7bdat",)),
    "API": (None, ()),
}
_FORMAT_BY_MEDIA_TYPE = {media: code for code, (media, _) in _FORMATS.items() if media}
_FORMAT_BY_MEDIA_TYPE |= {
    "text/xml": "XML",
    "text/json": "JSON",
    "application/csv": "CSV",
    "application/vnd.api+json": "JSON",
    "application/x-zip-compressed": "ZIP",
    "application/vnd.google-earth.kmz+xml": "KMZ",
    "application/vnd.geo+json": "GEOJSON",
}
_FORMAT_BY_EXTENSION = {ext: code for code, (_, exts) in _FORMATS.items() for ext in exts}
# Source spellings that name a format in words. "Excel" alone does not say XLS or XLSX, so it is
# resolved from the media type or the URL instead (None).
_FORMAT_ALIASES: dict[str, str | None] = {
    "EXCEL": None,
    "EXCEL FILE": None,
    "EXCEL-XLS": "XLS",
    "SPREADSHEET": None,
    "TEXT": "TXT",
    "PLAIN TEXT": "TXT",
    "SHAPEFILE": "SHP",
    "ESRI SHAPEFILE": "SHP",
    "STATA": "DTA",
    "SPSS": "SAV",
    "SAS": "SAS7BDAT",
    "RSS+XML": "RSS",
    "RDF+XML": "RDF",
    "RDF/XML": "RDF",
    "JSONLD": "JSON-LD",
    "GZ": "GZIP",
    "HTM": "HTML",
    "JPG": "JPEG",
    "TIF": "TIFF",
}
# IANA top-level types: "type/csv" or "pdf/xls" are typos, not media types.
_MEDIA_TOP_LEVEL = frozenset(
    {"application", "audio", "font", "image", "message", "model", "multipart", "text", "video"}
)
_MEANINGLESS_MEDIA_TYPES = frozenset({"application/unknown", "application/x-unknown"})
_EXTENSION_RE = re.compile(r"\.([A-Za-z0-9]{1,8})$")


def media_type(value: Any) -> str | None:
    """Lower-case IANA type/subtype, parameters removed ("text/CSV; charset=utf-8" → text/csv)."""
    value = text(value)
    if value is None:
        return None
    value = value.split(";", 1)[0].strip().lower()
    top = value.split("/", 1)[0]
    if top not in _MEDIA_TOP_LEVEL or value in _MEANINGLESS_MEDIA_TYPES:
        return None
    return value if MEDIA_TYPE_RE.match(value) else None


def _format_from_word(value: str) -> str | None:
    """A declared format word: "csv", "Zipped CSV" (→ ZIP: that is the file you download), …"""
    word = " ".join(value.upper().split())
    if word.startswith("ZIPPED "):
        return "ZIP"
    if word.endswith(" FILE") and word[: -len(" FILE")] in _FORMATS:
        word = word[: -len(" FILE")]
    if word in _FORMAT_ALIASES:
        return _FORMAT_ALIASES[word]
    return word if FORMAT_RE.match(word) else None


def _extension_of(url: str | None) -> str | None:
    if not url:
        return None
    path = url.split("?", 1)[0].split("#", 1)[0]
    last = path.rsplit("/", 1)[-1] if "/" in path.split("://", 1)[-1] else ""
    match = _EXTENSION_RE.search(last)
    return match[1].lower() if match else None


def format_and_media_type(
    declared_format: Any, declared_media_type: Any, url: str | None
) -> tuple[str | None, str | None]:
    """Resolve (format, media type) from what a source declares, most specific first.

    A format may be given as a word ("csv") or as a media type ("text/csv"); a missing format is
    derived from the media type, then from the URL's file extension; a missing media type from
    the format. Declared values always win over derived ones, even when they disagree, because
    the importer reports what the publisher said rather than second-guessing it.
    """
    fmt: str | None = None
    media = media_type(declared_media_type)
    if isinstance(declared_format, str) and declared_format.strip():
        if "/" in declared_format:
            as_media = media_type(declared_format)
            fmt = _FORMAT_BY_MEDIA_TYPE.get(as_media) if as_media else None
            media = media or as_media
        else:
            fmt = _format_from_word(declared_format)
    extension_format = _FORMAT_BY_EXTENSION.get(_extension_of(url) or "")
    if fmt is None:
        fmt = (_FORMAT_BY_MEDIA_TYPE.get(media) if media else None) or extension_format
    if media is None and fmt is not None and fmt in _FORMATS:
        media = _FORMATS[fmt][0]
    return fmt, media
