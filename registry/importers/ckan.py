"""CKAN API output → our dataset schema.

Accepts what people actually save from a CKAN portal: a `package_search` response, a
`package_show` response, a bare list of packages, one bare package, or JSON lines of packages.
Field choices follow ckanext-dcat's CKAN→DCAT mapping, so a CKAN portal that already publishes
DCAT gives the same answer through either route (docs/import.md, "CKAN").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from registry.importers import values as v
from registry.importers.file_types import format_and_media_type
from registry.importers.outcomes import Outcome, RejectedRecord, Visibility
from registry.importers.sources import read_text
from registry.importers.validation import finish

_LICENSE_UNKNOWN = frozenset({"", "notspecified", "other", "other-closed", "other-open"})
_ACCESS_RIGHTS = {"public": "public", "restricted": "restricted", "non_public": "non-public"}
# Chinese government portals keep the national directory's classification in extras.
_CLASSIFICATION_KEYS = ("资源分类", "信息资源分类", "resource_classification")
# 所属行业 (industry) and 主题 (topic) are labels the publisher chose; our schema has no field of
# their own, and as the publisher's own subject words they are keywords (dcat:keyword).
_SUBJECT_KEYS = ("所属行业", "行业分类", "主题", "主题分类", "所属主题")
_LABEL_SPLIT_RE = re.compile(r"\s*[,，;；]\s*")


def read(path: Path) -> Iterator[Outcome]:
    """Packages numbered from 1 in file order (for JSON lines: the line number)."""
    content = read_text(path)
    try:
        document = json.loads(content)
    except json.JSONDecodeError:
        if not _looks_like_json_lines(content):
            raise
        yield from _read_json_lines(content)
        return
    for position, package in enumerate(packages_of(document, path), start=1):
        yield map_package(position, package)


def packages_of(document: Any, path: Path | str = "<input>") -> list[Any]:
    """The package list inside any of the API response shapes."""
    if isinstance(document, list):
        return document
    if not isinstance(document, dict):
        raise ValueError(f"{path}: not CKAN API output")
    if document.get("success") is False:
        raise ValueError(f"{path}: a failed CKAN API response: {document.get('error')}")
    result = document.get("result", document)
    if isinstance(result, dict) and isinstance(result.get("results"), list):
        return result["results"]  # package_search
    if isinstance(result, list):
        return result  # current_package_list_with_resources
    if isinstance(result, dict) and ("name" in result or "id" in result):
        return [result]  # package_show, or one bare package
    raise ValueError(f"{path}: not CKAN API output (no package, package list or search result)")


def _looks_like_json_lines(content: str) -> bool:
    """A broken pretty-printed document must fail as a whole, not as a rejection per line."""
    first = next((line for line in content.splitlines() if line.strip()), "")
    try:
        return isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        return False


def _read_json_lines(content: str) -> Iterator[Outcome]:
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            package = json.loads(line)
        except json.JSONDecodeError as error:
            yield RejectedRecord(number, None, [f"/: line {number} is not JSON: {error.msg}"],
                                 line)
            continue
        yield map_package(number, package)


def map_package(position: int, package: Any) -> Outcome:
    if not isinstance(package, dict):
        return RejectedRecord(position, None, ["/: a package must be a JSON object"], package)
    external_id = v.text(package.get("id")) or v.text(package.get("name"))
    if external_id is None:
        return RejectedRecord(position, None, ["/id: is required (or /name)"], package)
    extras = _extras(package)
    name = v.text(package.get("name"))
    slug_hint = v.slugify(name.replace("_", "-")) if name else v.slugify(package.get("title"))
    visibility: Visibility = "government" if package.get("private") is True else "public"
    organization = package.get("organization")
    org_name = (
        v.text(organization.get("title")) or v.text(organization.get("name"))
        if isinstance(organization, dict)
        else None
    )
    return finish(
        position,
        external_id,
        slug_hint,
        _metadata(package, extras, org_name),
        visibility,
        (org_name,) if org_name else (),
        source=package,
    )


def _extras(package: dict[str, Any]) -> dict[str, Any]:
    """CKAN `extras` is a list of {key, value}; harvested DCAT fields live there."""
    extras = package.get("extras")
    if isinstance(extras, dict):
        return extras
    if not isinstance(extras, list):
        return {}
    return {
        item["key"]: item.get("value")
        for item in extras
        if isinstance(item, dict) and isinstance(item.get("key"), str)
    }


def _metadata(
    package: dict[str, Any], extras: dict[str, Any], org_name: str | None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "title": _localized(package, "title"),
        "description": _localized(package, "notes"),
        "identifier": v.text(extras.get("identifier"), 500)
        or v.text(extras.get("guid"), 500)
        or v.text(package.get("id"), 500),
        "publisher": {"name": name} if (name := v.localized(v.text(org_name, 500))) else None,
        "contact_point": _contact_point(package, extras),
        "keywords": v.keywords([*_tag_names(package.get("tags")), *_subject_labels(extras)]),
        "classification": v.classification(_first(extras, _CLASSIFICATION_KEYS)),
        "themes": v.themes(_json_list(extras.get("theme"))),
        "issued": v.timestamp(extras.get("issued")) or v.timestamp(package.get("metadata_created")),
        "modified": v.timestamp(extras.get("modified"))
        or v.timestamp(package.get("metadata_modified")),
        "language": v.languages(_json_list(extras.get("language"))),
        "spatial": _spatial(extras),
        "temporal": v.temporal(extras.get("temporal"))
        or v.temporal_from_bounds(extras.get("temporal_start"), extras.get("temporal_end")),
        "access_rights": _access_rights(extras.get("access_rights")),
        "license": v.uri(package.get("license_url")) or _license_id(package.get("license_id")),
        "conforms_to": [
            link for raw in _json_list(extras.get("conforms_to")) if (link := v.uri(raw))
        ],
        "landing_page": v.uri(package.get("url")),
        "update_cycle": v.update_cycle(extras.get("frequency"))
        or v.update_cycle(extras.get("accrual_periodicity")),
        "distributions": _distributions(package.get("resources")),
    }
    return {key: value for key, value in metadata.items() if value}


def _localized(package: dict[str, Any], key: str) -> dict[str, str] | None:
    """ckanext-fluent keeps translations in `<key>_translated` ({"en": …, "zh_CN": …})."""
    translated = package.get(f"{key}_translated")
    if isinstance(translated, dict):
        texts: dict[str, str] = {}
        for lang, value in translated.items():
            ours = str(lang).lower().split("_")[0].split("-")[0]
            if ours in ("zh", "en") and (clean := v.text(value)):
                texts.setdefault(ours, clean)
        if texts:
            return texts
    return v.localized(package.get(key))


def _first(extras: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((extras[key] for key in keys if extras.get(key)), None)


def _subject_labels(extras: dict[str, Any]) -> list[Any]:
    """Every 所属行业 / 主题 label: a JSON list, or labels joined by commas or semicolons.
    Never split at 、: it belongs inside labels (交通运输、仓储和邮政业 is one GB/T 4754 门类)."""
    labels: list[Any] = []
    for key in _SUBJECT_KEYS:
        value = extras.get(key)
        if isinstance(value, str) and not value.strip().startswith("["):
            labels.extend(_LABEL_SPLIT_RE.split(value))
        else:
            labels.extend(_json_list(value))
    return labels


def _tag_names(tags: Any) -> list[Any]:
    if not isinstance(tags, list):
        return []
    return [tag.get("name") if isinstance(tag, dict) else tag for tag in tags]


def _json_list(value: Any) -> list[Any]:
    """ckanext-dcat stores multi-valued extras as a JSON-encoded list in one string."""
    if isinstance(value, list):
        return value
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return []
        return decoded if isinstance(decoded, list) else []
    return [value] if value is not None else []


def _contact_point(package: dict[str, Any], extras: dict[str, Any]) -> dict[str, str] | None:
    """DCAT contact fields first, then the maintainer (who answers questions), then the author."""
    for name_key, email_key in (
        ("contact_name", "contact_email"),
        ("maintainer", "maintainer_email"),
        ("author", "author_email"),
    ):
        source = extras if name_key.startswith("contact") else package
        contact = v.contact_point(source.get(name_key), source.get(email_key))
        if contact:
            return contact
    return None


def _spatial(extras: dict[str, Any]) -> dict[str, str] | None:
    """`spatial` is usually GeoJSON (dropped: no geometry in our schema); ckanext-dcat also keeps
    `spatial_uri` and `spatial_text`."""
    place = {
        "uri": v.uri(extras.get("spatial_uri")),
        "name": v.text(extras.get("spatial_text"), 300),
    }
    place = {key: value for key, value in place.items() if value}
    return place or v.spatial(extras.get("spatial"))


def _access_rights(value: Any) -> str | None:
    code = v.text(value)
    if code is None:
        return None
    return _ACCESS_RIGHTS.get(code.rstrip("/").rsplit("/", 1)[-1].lower().replace("-", "_"))


def _license_id(value: Any) -> str | None:
    license_id = v.text(value, 500)
    return None if license_id is None or license_id.lower() in _LICENSE_UNKNOWN else license_id


def _distributions(resources: Any) -> list[dict[str, Any]]:
    if not isinstance(resources, list):
        return []
    mapped = [d for raw in resources if isinstance(raw, dict) and (d := _distribution(raw))]
    return mapped[: v.MAX_DISTRIBUTIONS]


def _distribution(resource: dict[str, Any]) -> dict[str, Any] | None:
    """A resource `url` is where it is reached; it is also a download URL when CKAN holds the
    file itself (url_type "upload"), which is the only case we know it is a file."""
    url = v.uri(resource.get("url"))
    if url is None:
        return None
    fmt, media = format_and_media_type(resource.get("format"), resource.get("mimetype"), url)
    distribution = {
        "title": v.text(resource.get("name"), 500),
        "description": v.text(resource.get("description"), 5000),
        "access_url": url,
        "download_url": url if resource.get("url_type") == "upload" else None,
        "format": fmt,
        "media_type": media,
        "byte_size": v.byte_size(resource.get("size")),
        "checksum": v.sha256_checksum(resource.get("hash")),
        "license": _license_id(resource.get("license")),
        "issued": v.timestamp(resource.get("created")),
        "modified": v.timestamp(resource.get("last_modified"))
        or v.timestamp(resource.get("metadata_modified")),
    }
    return {key: value for key, value in distribution.items() if value is not None}
