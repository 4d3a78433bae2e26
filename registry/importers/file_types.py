"""Distribution formats and media types: what a source declares, resolved to a format code and
an IANA media type (docs/import.md, "Formats and media types")."""

from __future__ import annotations

import re
from typing import Any

from registry.importers.values import SCHEMA, text

_DIST = SCHEMA["$defs"]["distribution"]["properties"]
FORMAT_RE = re.compile(_DIST["format"]["pattern"])
MEDIA_TYPE_RE = re.compile(_DIST["media_type"]["pattern"])

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
