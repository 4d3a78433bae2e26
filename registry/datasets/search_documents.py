"""How a dataset version looks to the search index (a flat document; see search.documents)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from registry.datasets.models import Dataset
from registry.organizations.models import Organization


def _parse_date(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _region(metadata: dict[str, Any]) -> str | None:
    spatial = metadata.get("spatial") or {}
    return spatial.get("code") or spatial.get("name")


_CLASSIFICATION_LEVELS = ("category", "item", "subitem", "detail")


def classification_labels(metadata: dict[str, Any]) -> list[str]:
    """资源分类, outermost level first (类, 项, 目, 细目): the catalogue's own topic words."""
    classification = metadata.get("classification") or {}
    return [classification[level] for level in _CLASSIFICATION_LEVELS
            if classification.get(level)]


def metadata_publisher_names(metadata: dict[str, Any]) -> list[str]:
    """The publisher as the entry names it (dct:publisher); often the department itself, when
    the owning organisation is the province or ministry above it."""
    name = (metadata.get("publisher") or {}).get("name") or {}
    return [text for text in (name.get("zh"), name.get("en")) if text]


def pre_analysed(metadata: dict[str, Any]) -> dict[str, str]:
    """The index text of an entry's own fields, computed where it is cheapest (a bulk import
    does it in its reader process, so the writer's core only writes). The classification
    labels go with the keywords: they are subject words, weighted like them."""
    from search.analysis import text_tokens_of

    title = metadata.get("title", {})
    description = metadata.get("description", {})
    return text_tokens_of(title.get("zh"), title.get("en"), list(metadata.get("keywords", [])),
                          [*metadata.get("themes", []), *classification_labels(metadata)],
                          description.get("zh"), description.get("en"))


def search_document(dataset: Dataset, *, version: int, state: str, visibility: str,
                    metadata: dict[str, Any], organization: Organization,
                    modified: datetime, ancestry: list[Organization] | None = None,
                    analysed: dict[str, str] | None = None) -> dict[str, Any]:
    if ancestry is None:
        ancestry = organization.ancestry()
    if analysed is None:  # the same index text as a bulk import computes ahead
        analysed = pre_analysed(metadata)
    organization_names = [n for o in ancestry for n in (o.name_zh, o.name_en) if n]
    title = metadata.get("title", {})
    description = metadata.get("description", {})
    distributions = metadata.get("distributions", [])
    formats = sorted({d["format"] for d in distributions if d.get("format")})
    return {
        "dataset_id": dataset.id,
        "slug": dataset.slug,
        "version": version,
        "state": state,
        "visibility": visibility,
        "organization_id": organization.id,
        "organization_path": [o.id for o in ancestry],
        "publisher_names": list(dict.fromkeys([*organization_names,
                                               *metadata_publisher_names(metadata)])),
        "title_zh": title.get("zh"),
        "title_en": title.get("en"),
        "description_zh": description.get("zh"),
        "description_en": description.get("en"),
        "keywords": list(metadata.get("keywords", [])),
        "themes": list(metadata.get("themes", [])),
        "classification": classification_labels(metadata),
        "formats": formats,
        "license": metadata.get("license"),
        "sharing_type": (metadata.get("sharing") or {}).get("type"),
        "open_attribute": metadata.get("open_attribute"),
        "update_cycle": metadata.get("update_cycle"),
        "data_grade": metadata.get("data_grade"),
        "region": _region(metadata),
        "issued": _parse_date(metadata.get("issued")),
        "modified": _parse_date(metadata.get("modified")) or modified.date(),
        "analysed": analysed,
    }
