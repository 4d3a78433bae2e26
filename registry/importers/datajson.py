"""Project Open Data `data.json` (DCAT-US 1.1) catalogues → our dataset schema.

This is how US federal agencies (and many others) publish their inventories; the files are
hand-maintained, so every field arrives in several spellings. The mapping is table-driven where
it can be and drops what it cannot express rather than inventing (docs/import.md, "data.json").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from registry.importers import values as v
from registry.importers.file_types import format_and_media_type
from registry.importers.outcomes import Outcome, RejectedRecord
from registry.importers.sources import read_text
from registry.importers.validation import finish

# accessLevel → (visibility in the registry, dct:accessRights). Anything not plainly public is
# kept to government users: a wrong "public" would leak, a wrong "government" only hides.
_ACCESS = {
    "public": ("public", "public"),
    "restricted public": ("government", "restricted"),
    "non-public": ("government", "non-public"),
}
_MAX_PUBLISHER_DEPTH = 20  # subOrganizationOf chains are data: guard against cycles


def read(path: Path) -> Iterator[Outcome]:
    """Map every entry of `dataset` (or of a bare list, the POD 1.0 layout), numbered from 1."""
    document = json.loads(read_text(path))
    entries = document.get("dataset") if isinstance(document, dict) else document
    if not isinstance(entries, list):
        raise ValueError(f"{path}: not a data.json catalogue (no 'dataset' list)")
    for position, entry in enumerate(entries, start=1):
        yield map_dataset(position, entry)


def map_dataset(position: int, entry: Any) -> Outcome:
    if not isinstance(entry, dict):
        return RejectedRecord(position, None, ["/: a dataset must be a JSON object"], entry)
    external_id = v.text(entry.get("identifier"))
    if external_id is None:
        return RejectedRecord(position, None, ["/identifier: is required"], entry)
    visibility, access_rights = _ACCESS.get(
        str(entry.get("accessLevel", "")).strip().lower(), ("government", None)
    )
    metadata = _metadata(entry, external_id, access_rights)
    return finish(
        position,
        external_id,
        v.slugify(entry.get("title")),
        metadata,
        visibility,
        publisher_path(entry.get("publisher")),
        source=entry,
    )


def _metadata(entry: dict[str, Any], external_id: str, access_rights: str | None) -> dict[str, Any]:
    modified_raw = entry.get("modified")
    metadata: dict[str, Any] = {
        "title": v.localized(entry.get("title")),
        "description": v.localized(entry.get("description")),
        "identifier": v.text(external_id, 500),
        "publisher": _publisher(entry.get("publisher")),
        "contact_point": _contact_point(entry.get("contactPoint")),
        "keywords": v.keywords(entry.get("keyword")),
        "themes": v.themes(entry.get("theme")),
        "issued": v.timestamp(entry.get("issued")),
        "modified": v.timestamp(modified_raw),
        "language": v.languages(entry.get("language")),
        "spatial": v.spatial(entry.get("spatial")),
        "temporal": v.temporal(entry.get("temporal")),
        "access_rights": access_rights,
        "license": v.text(entry.get("license"), 500),
        "conforms_to": _conforms_to(entry),
        "landing_page": v.uri(entry.get("landingPage")) or v.uri(entry.get("accessURL")),
        "distributions": _distributions(entry.get("distribution")),
        # A repeating interval in `modified` ("R/P1D") is how some publishers say "updated daily".
        "update_cycle": v.update_cycle(entry.get("accrualPeriodicity"))
        or (v.update_cycle(modified_raw) if str(modified_raw).startswith("R/") else None),
    }
    return {key: value for key, value in metadata.items() if value}


def publisher_path(publisher: Any) -> tuple[str, ...]:
    """Names outermost first, following `subOrganizationOf`; a level repeating its parent's name
    (common: "TTB" under "TTB") is one organisation, not two."""
    names: list[str] = []
    node = publisher
    while isinstance(node, dict) and len(names) < _MAX_PUBLISHER_DEPTH:
        name = v.text(node.get("name"), 500)
        if name is not None:
            names.append(name)
        node = node.get("subOrganizationOf")
    names.reverse()
    return tuple(name for i, name in enumerate(names) if i == 0 or names[i - 1] != name)


def _publisher(publisher: Any) -> dict[str, Any] | None:
    if not isinstance(publisher, dict):
        return None
    name = v.localized(v.text(publisher.get("name"), 500))
    return {"name": name} if name else None


def _contact_point(contact: Any) -> dict[str, str] | None:
    if not isinstance(contact, dict):
        return None
    return v.contact_point(contact.get("fn"), contact.get("hasEmail")) or None


def _conforms_to(entry: dict[str, Any]) -> list[str]:
    """`conformsTo` (a standard) and `describedBy` (a data dictionary) both say what the data
    follows; DCAT-AP has one property for that, dct:conformsTo."""
    candidates = [entry.get("conformsTo"), entry.get("describedBy")]
    links = [link for raw in candidates if (link := v.uri(raw))]
    return list(dict.fromkeys(links))[: v.MAX_CONFORMS_TO]


def _distributions(values: Any) -> list[dict[str, Any]]:
    if isinstance(values, dict):
        values = [values]
    if not isinstance(values, list):
        return []
    mapped = [d for raw in values if isinstance(raw, dict) and (d := _distribution(raw))]
    return mapped[: v.MAX_DISTRIBUTIONS]


def _distribution(raw: dict[str, Any]) -> dict[str, Any] | None:
    """DCAT requires an access URL; a download URL is also one (DCAT-AP: "accessURL… if
    downloadURL is given, accessURL should repeat it"). No URL at all → dropped."""
    download_url = v.uri(raw.get("downloadURL"))
    access_url = v.uri(raw.get("accessURL")) or download_url
    if access_url is None:
        return None
    fmt, media = format_and_media_type(
        raw.get("format"), raw.get("mediaType"), download_url or access_url
    )
    distribution = {
        "title": v.text(raw.get("title"), 500),
        "description": v.text(raw.get("description"), 5000),
        "access_url": access_url,
        "download_url": download_url,
        "format": fmt,
        "media_type": media,
        "modified": v.timestamp(raw.get("modified")),
    }
    return {key: value for key, value in distribution.items() if value is not None}
