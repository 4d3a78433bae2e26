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

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
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
# Fields of the envelope (not of the metadata) the form shows.
ENVELOPE_FIELDS = ("visibility", "note")
MAX_DISTRIBUTIONS = 50
# A whole number as a browser sends it: ASCII digits only (str.isdigit() also accepts "²" and
# "١", which int() then refuses), and short, so int() never meets a 5,000-digit string.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")
_BYTE_SIZE = re.compile(r"[0-9]{1,18}")
_DISTRIBUTION_NAME = re.compile(r"distributions_([0-9]{1,3})_")


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


def whole_number(raw: str | None) -> int | None:
    """A hidden counter or version number from a form, or None when it is not one."""
    if raw is None or not _WHOLE_NUMBER.fullmatch(raw):
        return None
    return int(raw)


def _submitted_distributions(form: MultiDict[str, str]) -> int:
    """How many distribution blocks the request really carries (by their field names)."""
    indexes = [int(m.group(1)) for name in form if (m := _DISTRIBUTION_NAME.match(name))]
    return min(max(indexes, default=0) + 1, MAX_DISTRIBUTIONS)


def form_from_request(form: MultiDict[str, str]) -> FormState:
    """The submitted form. A damaged hidden counter is reported (nothing will be saved) and
    the blocks actually sent are kept, so what the officer typed is shown again, not lost."""
    values: dict[str, Any] = {name: form.get(name, "") for name in TEXT_FIELDS}
    values["themes"] = form.getlist("themes")
    general: list[str] = []
    count = whole_number(form.get("distribution_count", "1") or "1")
    if count is None:
        count = _submitted_distributions(form)
        general.append(damaged_form_message())
    count = max(1, min(count, MAX_DISTRIBUTIONS))
    for i in range(count):
        for sub in DISTRIBUTION_FIELDS:
            values[f"distributions_{i}_{sub}"] = form.get(f"distributions_{i}_{sub}", "")
    return FormState(values=values, distribution_count=count, general_errors=general)


def damaged_form_message() -> str:
    return _("Part of the form that the page fills in itself arrived damaged, so nothing was "
             "saved. Your entries are shown below: check them and save again.")


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
                _set(base, sub, int(text) if _BYTE_SIZE.fullmatch(text) else text)
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
#
# The actions report errors as the API does: a JSON Pointer and an English detail written for
# developers ("does not match the expected form (^[0-9A-Za-z./\-]{1,64}$)"). An officer sees
# neither: each error becomes the label of the field it belongs to and a sentence, in the
# reader's language, that says what to type there.

FORM_LABELS: dict[str, Any] = {
    "title_zh": _l("Title (Chinese)"), "title_en": _l("Title (English)"),
    "description_zh": _l("Description (Chinese)"),
    "description_en": _l("Description (English)"), "keywords": _l("Keywords"),
    "themes": _l("Themes"), "resource_code": _l("Resource code"),
    "classification_category": _l("Classification: category"),
    "classification_item": _l("Classification: item"),
    "classification_subitem": _l("Classification: sub-item"),
    "classification_detail": _l("Classification: detail"),
    "sharing_type": _l("Sharing type"), "sharing_conditions": _l("Sharing conditions"),
    "sharing_basis": _l("Legal basis for not sharing"), "open_attribute": _l("Open attribute"),
    "update_cycle": _l("Update cycle"), "data_grade": _l("Data grade"),
    "data_items": _l("Data items"), "issued": _l("Issued"), "modified": _l("Modified"),
    "spatial_name": _l("Spatial coverage: name"),
    "spatial_code": _l("Spatial coverage: region code"),
    "temporal_start": _l("Temporal coverage: start"),
    "temporal_end": _l("Temporal coverage: end"), "license": _l("License"),
    "contact_point_name": _l("Contact: name"), "contact_point_email": _l("Contact: e-mail"),
    "landing_page": _l("Landing page"), "visibility": _l("Who may see it"),
    "note": _l("Note on this change"),
}
DISTRIBUTION_LABELS: dict[str, Any] = {
    "title": _l("Title"), "access_url": _l("Access URL"), "download_url": _l("Download URL"),
    "format": _l("Format"), "media_type": _l("Media type"), "byte_size": _l("Size in bytes"),
    "checksum": _l("SHA-256 checksum"),
}
# The longest text each field takes (from schemas/dataset.schema.json), for "too long".
_MAX_LENGTH = {
    "title_zh": 500, "title_en": 500, "description_zh": 20000, "description_en": 20000,
    "keywords": 100, "classification_category": 100, "classification_item": 100,
    "classification_subitem": 100, "classification_detail": 100,
    "sharing_conditions": 5000, "sharing_basis": 5000, "license": 500,
    "spatial_name": 300, "contact_point_name": 200, "contact_point_email": 300,
    "landing_page": 2000, "note": 2000, "data_items": 200, "title": 500,
    "access_url": 2000, "download_url": 2000,
}


def form_label(name: str) -> str:
    """The label a field has on the form (`distributions_1_format` → "Distribution 2: Format")."""
    match = re.fullmatch(r"distributions_([0-9]+)_(\w+)", name)
    if match and match.group(2) in DISTRIBUTION_LABELS:
        return _("Distribution %(n)s: %(field)s", n=int(match.group(1)) + 1,
                 field=DISTRIBUTION_LABELS[match.group(2)])
    return str(FORM_LABELS.get(name, _("This field")))


def _format_hint(name: str) -> str | None:
    """What a well-formed value of this field looks like, or None for free text."""
    sub = name.split("_", 2)[2] if name.startswith("distributions_") else name
    if sub in ("issued", "modified", "temporal_start", "temporal_end"):
        return _("Enter a date as YYYY-MM-DD, for example 2024-03-01.")
    if sub in ("landing_page", "access_url", "download_url"):
        return _("Enter a full web address that starts with https:// or http://.")
    if sub == "contact_point_email":
        return _("Enter an e-mail address such as name@example.gov.cn.")
    if sub == "resource_code":
        return _("Use only letters, digits and the characters . / - (at most 64).")
    if sub == "spatial_code":
        return _("Enter the region code of GB/T 2260: letters, digits or -, at most 20 "
                 "(for example 110000).")
    if sub == "format":
        return _("Write the format in capitals or digits, such as CSV, JSON or XLSX.")
    if sub == "media_type":
        return _("Write a media type such as text/csv.")
    if sub == "byte_size":
        return _("Enter the size as a whole number of bytes, for example 20480.")
    if sub == "checksum":
        return _("Enter the SHA-256 as 64 hexadecimal characters (0-9 and a-f).")
    if sub in ("sharing_type", "open_attribute", "update_cycle", "data_grade", "themes",
               "visibility"):
        return _("Choose one of the options in the list.")
    if sub == "data_items":
        return _("Write one item per line as name | type | description | unit; the type is "
                 "one of string, integer, decimal, boolean, date, datetime, binary, "
                 "geometry, other.")
    return None


def human_message(name: str, error: FieldError) -> str:
    """The sentence shown beside field `name` for one of the action's errors."""
    detail = error.detail
    if detail == "is required" or detail.endswith("should be non-empty") \
            or detail.endswith("is too short"):
        if name == "sharing_conditions":
            return _("Say on what conditions the data is shared (required when sharing is "
                     "conditional).")
        if name.startswith("distributions_"):
            return _("Give at least an access URL for this distribution, or leave the whole "
                     "block empty.") if name.endswith("access_url") else \
                _("This field is required.")
        if name in ("title_zh", "title_en"):
            return _("Give a title, in Chinese or in English.")
        if name in ("description_zh", "description_en"):
            return _("Give a description, in Chinese or in English.")
        return _("This field is required.")
    if "NUL character" in detail or "surrogate" in detail:
        return _("Contains a character that cannot be stored (an invisible control "
                 "character). Delete it and type the text again.")
    if detail.endswith("is too long"):
        if name == "keywords" and (error.pointer or "").rstrip("/").endswith("/keywords"):
            return _("At most 100 keywords.")
        if name == "keywords":
            return _("A keyword may have at most 100 characters.")
        key = name.split("_", 2)[2] if name.startswith("distributions_") else name
        limit = _MAX_LENGTH.get(key)
        return _("This is too long: at most %(n)s characters.", n=limit) if limit \
            else _("This is too long: please shorten it.")
    if "already used" in detail or "is taken" in detail:
        return _("This value is already used by another entry.")
    return _format_hint(name) or _("This value cannot be accepted: please check it.")


def field_for_pointer(pointer: str | None, state: FormState) -> str | None:
    """`/metadata/title/zh` → `title_zh`; the longest form field the pointer lies in."""
    if pointer and pointer.lstrip("/") in ENVELOPE_FIELDS:
        return pointer.lstrip("/")
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
    if len(tokens) >= 2 and tokens[0] == "distributions" and tokens[1].isdecimal():
        return f"distributions_{tokens[1]}_access_url"
    return _OBJECT_FIELDS.get(tokens[0]) if tokens else None


def _line_number(pointer: str | None) -> int | None:
    """`/metadata/data_items/2/type` → 3, the line of the data-items box."""
    parts = (pointer or "").split("/")
    if len(parts) > 3 and parts[2] == "data_items" and parts[3].isdecimal():
        return int(parts[3]) + 1
    return None


def attach_errors(state: FormState, errors: list[FieldError], fallback: str) -> None:
    """Each of the action's errors beside its field, as a sentence for people."""
    for error in errors:
        name = field_for_pointer(error.pointer, state)
        if name is None:
            state.general_errors.append(_("Something in the entry cannot be accepted: please "
                                          "check every field and save again."))
            continue
        message = human_message(name, error)
        line = _line_number(error.pointer) if name == "data_items" else None
        if line is not None:
            message = _("Line %(n)s: %(message)s", n=line, message=message)
        if message not in state.errors.get(name, []):
            state.errors.setdefault(name, []).append(message)
    if not errors:
        state.general_errors.append(fallback)
    state.errors = dict(sorted(state.errors.items(), key=lambda item: _form_position(item[0])))


def _form_position(name: str) -> tuple[int, int, int]:
    """Where a field is on the form, so the summary lists errors from top to bottom."""
    order = list(FORM_LABELS)
    match = re.fullmatch(r"distributions_([0-9]+)_(\w+)", name)
    if match:
        sub = list(DISTRIBUTION_LABELS).index(match.group(2)) \
            if match.group(2) in DISTRIBUTION_LABELS else 0
        return (order.index("visibility"), int(match.group(1)) - 1_000_000, sub)
    return (order.index(name) if name in order else len(order), 0, 0)
