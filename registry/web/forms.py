"""The department form ↔ dataset metadata, and problem pointers ↔ form fields.

The form is applied *onto* the version it edits: keys and sub-keys the form does not show
(a publisher block from an import, a contact's telephone…) are carried over untouched, so
editing in the portal never silently drops metadata. Nothing is validated here: the action
validates, exactly as for the API, and its `FieldError` pointers are mapped back to fields.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from registry.problems import FieldError

TEXT_FIELDS = ("title_zh", "title_en", "description_zh", "description_en", "resource_code",
               "classification_category", "classification_item", "classification_subitem",
               "classification_detail", "sharing_type", "sharing_conditions", "sharing_basis",
               "open_attribute", "update_cycle", "data_grade", "license", "issued",
               "modified", "spatial_name", "spatial_code", "temporal_start", "temporal_end",
               "contact_point_name", "contact_point_email", "landing_page", "keywords",
               "data_items")
DISTRIBUTION_FIELDS = ("title", "access_url", "download_url", "format", "media_type",
                       "byte_size", "checksum")
# field -> (metadata key, sub-key or None)
_SIMPLE = {
    "resource_code": ("resource_code", None), "open_attribute": ("open_attribute", None),
    "update_cycle": ("update_cycle", None), "data_grade": ("data_grade", None),
    "license": ("license", None), "issued": ("issued", None), "modified": ("modified", None),
    "landing_page": ("landing_page", None),
    "title_zh": ("title", "zh"), "title_en": ("title", "en"),
    "description_zh": ("description", "zh"), "description_en": ("description", "en"),
    "classification_category": ("classification", "category"),
    "classification_item": ("classification", "item"),
    "classification_subitem": ("classification", "subitem"),
    "classification_detail": ("classification", "detail"),
    "sharing_type": ("sharing", "type"), "sharing_conditions": ("sharing", "conditions"),
    "sharing_basis": ("sharing", "basis"),
    "spatial_name": ("spatial", "name"), "spatial_code": ("spatial", "code"),
    "temporal_start": ("temporal", "start"), "temporal_end": ("temporal", "end"),
    "contact_point_name": ("contact_point", "name"),
    "contact_point_email": ("contact_point", "email"),
}
# Where an error on a whole object is shown.
_OBJECT_FIELDS = {"title": "title_zh", "description": "description_zh",
                  "classification": "classification_category", "sharing": "sharing_type",
                  "spatial": "spatial_name", "temporal": "temporal_start",
                  "contact_point": "contact_point_name"}
_KEYWORD_SPLIT = re.compile(r"[,，、;；\n]+")


@dataclass
class FormState:
    """What the form shows: values by field name, and errors by field name."""

    values: dict[str, Any]
    distribution_count: int
    errors: dict[str, list[str]] = field(default_factory=dict)
    general_errors: list[str] = field(default_factory=list)

    def value(self, name: str) -> str:
        raw = self.values.get(name)
        return "" if raw is None else str(raw)


# ---------------------------------------------------------------- metadata -> form


def form_from_metadata(metadata: Mapping[str, Any]) -> FormState:
    values: dict[str, Any] = {}
    for name, (key, sub) in _SIMPLE.items():
        raw = metadata.get(key)
        values[name] = (raw or {}).get(sub) if sub else raw
    values["keywords"] = "、".join(metadata.get("keywords", []))
    values["themes"] = list(metadata.get("themes", []))
    values["data_items"] = "\n".join(
        " | ".join([item.get("name", ""), item.get("type", ""), item.get("description", ""),
                    item.get("unit", "")]).rstrip(" |")
        for item in metadata.get("data_items", []))
    distributions = metadata.get("distributions", [])
    for i, dist in enumerate(distributions):
        for sub in DISTRIBUTION_FIELDS:
            raw = dist.get(sub)
            if sub == "checksum":
                raw = (raw or {}).get("value")
            values[f"distributions_{i}_{sub}"] = raw
    return FormState(values=values, distribution_count=len(distributions) + 1)


def form_from_request(form: MultiDict[str, str]) -> FormState:
    values: dict[str, Any] = {name: form.get(name, "") for name in TEXT_FIELDS}
    values["themes"] = form.getlist("themes")
    count = int(form.get("distribution_count", "1") or 1)
    count = max(1, min(count, 50))
    for i in range(count):
        for sub in DISTRIBUTION_FIELDS:
            values[f"distributions_{i}_{sub}"] = form.get(f"distributions_{i}_{sub}", "")
    return FormState(values=values, distribution_count=count)


# ---------------------------------------------------------------- form -> metadata


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    if value in (None, "", [], {}):
        target.pop(key, None)
    else:
        target[key] = value


def apply_form(base: Mapping[str, Any], state: FormState) -> dict[str, Any]:
    """`base` with every field the form manages replaced by the form's value."""
    metadata = copy.deepcopy(dict(base))
    for name, (key, sub) in _SIMPLE.items():
        text = state.value(name).strip()
        if sub is None:
            _set(metadata, key, text)
            continue
        obj = dict(metadata.get(key) or {})
        _set(obj, sub, text)
        _set(metadata, key, obj)
    _set(metadata, "keywords", list(dict.fromkeys(
        k.strip() for k in _KEYWORD_SPLIT.split(state.value("keywords")) if k.strip())))
    _set(metadata, "themes", list(dict.fromkeys(state.values.get("themes") or [])))
    _set(metadata, "data_items", parse_data_items(state.value("data_items")))
    _set(metadata, "distributions", _distributions(base.get("distributions", []), state))
    return metadata


def parse_data_items(text: str) -> list[dict[str, str]]:
    """One item per line: `name | type | description | unit` (only the name is required)."""
    items = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        item = dict(zip(("name", "type", "description", "unit"), parts, strict=False))
        items.append({k: v for k, v in item.items() if v})
    return items


def _distributions(old: list[dict[str, Any]], state: FormState) -> list[dict[str, Any]]:
    out = []
    for i in range(state.distribution_count):
        base = dict(old[i]) if i < len(old) else {}
        for sub in DISTRIBUTION_FIELDS:
            text = state.value(f"distributions_{i}_{sub}").strip()
            if sub == "byte_size":
                _set(base, sub, int(text) if text.isdigit() else text)
            elif sub == "checksum":
                _set(base, sub, {"algorithm": "sha256", "value": text.lower()} if text else None)
            elif sub == "format":
                _set(base, sub, text.upper())
            else:
                _set(base, sub, text)
        if any(state.value(f"distributions_{i}_{sub}").strip() for sub in DISTRIBUTION_FIELDS):
            out.append(base)
    return out


def merge_patch_between(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The RFC 7396 merge patch that turns `old` into `new` (null removes a key)."""
    patch: dict[str, Any] = {}
    for key in old:
        if key not in new:
            patch[key] = None
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            inner = merge_patch_between(before, value)
            if inner:
                patch[key] = inner
        elif value != before:
            patch[key] = value
    return patch


# ---------------------------------------------------------------- errors -> fields


def field_for_pointer(pointer: str | None, state: FormState) -> str | None:
    """`/metadata/title/zh` → `title_zh`; the longest form field the pointer lies in."""
    if not pointer or not pointer.startswith("/metadata"):
        return None
    tokens = [t for t in pointer.removeprefix("/metadata").split("/") if t]
    known = set(TEXT_FIELDS) | {"themes"} | {
        f"distributions_{i}_{sub}" for i in range(state.distribution_count)
        for sub in DISTRIBUTION_FIELDS}
    for length in range(len(tokens), 0, -1):
        name = "_".join(tokens[:length])
        if name in known:
            return name
    return _OBJECT_FIELDS.get(tokens[0]) if tokens else None


def attach_errors(state: FormState, errors: list[FieldError], fallback: str) -> None:
    for error in errors:
        name = field_for_pointer(error.pointer, state)
        detail = error.detail
        if name == "data_items" and error.pointer:
            parts = error.pointer.split("/")
            if len(parts) > 3 and parts[3].isdigit():
                detail = f"#{int(parts[3]) + 1}: {detail}"
        if name:
            state.errors.setdefault(name, []).append(detail)
        else:
            where = error.pointer or error.name or ""
            state.general_errors.append(f"{where} {detail}".strip())
    if not errors:
        state.general_errors.append(fallback)
