"""Field-by-field differences between two versions' metadata, written for people.

Used by the public version diff and by the officer's conflict page. A change is named by the
label of its field ("Sharing · Conditions"), never by a JSON Pointer, and coded values (an
update cycle, a theme, a state) are shown with their label in the reader's language, so the
Chinese page shows "每月", not "monthly".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l

from registry.web import vocabulary
from registry.web.vocabulary import FIELD_LABELS, label

SUB_LABELS: dict[str, Any] = {
    "zh": _l("Chinese"), "en": _l("English"), "category": _l("Category"), "item": _l("Item"),
    "subitem": _l("Sub-item"), "detail": _l("Detail"), "type": _l("Type"),
    "conditions": _l("Conditions"), "basis": _l("Basis"), "name": _l("Name"),
    "code": _l("Region code"), "uri": _l("Address"), "start": _l("Start"), "end": _l("End"),
    "email": _l("E-mail"), "telephone": _l("Telephone"), "url": _l("Address"),
    "homepage": _l("Home page"), "identifier": _l("Identifier"),
}
# Leaf paths whose values are codes of a vocabulary.
_CODED: dict[str, dict[str, Any]] = {
    "/open_attribute": vocabulary.OPEN_ATTRIBUTES, "/update_cycle": vocabulary.UPDATE_CYCLES,
    "/data_grade": vocabulary.DATA_GRADES, "/sharing/type": vocabulary.SHARING_TYPES,
    "/access_rights": vocabulary.ACCESS_RIGHTS,
}


@dataclass(frozen=True)
class FieldChange:
    path: str
    label: str
    before: str | None
    after: str | None

    @property
    def kind(self) -> str:
        if self.before is None:
            return "added"
        return "removed" if self.after is None else "changed"


def _list_text(top: str, value: list[Any]) -> str:
    if top == "themes":
        return "、".join(label(vocabulary.THEMES, str(code)) for code in value)
    if top == "language":
        return "、".join(vocabulary.language_label(str(code)) for code in value)
    if top in ("keywords", "related_resource_codes", "conforms_to"):
        return "、".join(map(str, value))
    if top == "data_items":
        return "\n".join(" | ".join(
            [str(i.get("name", "")), label(vocabulary.ITEM_TYPE_LABELS, i.get("type")),
             str(i.get("description", "")), str(i.get("unit", ""))]).rstrip(" |")
            for i in value if isinstance(i, dict))
    if top == "distributions":
        lines = []
        for d in value:
            if not isinstance(d, dict):
                continue
            checksum = (d.get("checksum") or {}).get("value", "") if isinstance(
                d.get("checksum"), dict) else ""
            parts = [d.get("title"), d.get("download_url") or d.get("access_url"),
                     d.get("format"), f"{d['byte_size']} B" if d.get("byte_size") else None,
                     f"SHA-256 {checksum[:16]}…" if checksum else None]
            lines.append(" · ".join(str(p) for p in parts if p))
        return "\n".join(lines)
    return json.dumps(value, ensure_ascii=False, indent=1)


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Leaf fields as path -> display text; objects are walked, lists compared whole."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}/{key}"))
        return out
    if isinstance(value, list):
        return {prefix: _list_text(prefix.split("/")[1] if "/" in prefix else prefix, value)}
    if isinstance(value, str):
        table = _CODED.get(prefix)
        return {prefix: label(table, value) if table else value}
    return {prefix: json.dumps(value, ensure_ascii=False)}


def path_label(path: str) -> str:
    """`/sharing/conditions` → "Sharing · Conditions", in the reader's language."""
    top, _sep, rest = path[1:].partition("/")
    text = str(FIELD_LABELS.get(top, top))
    for part in [p for p in rest.split("/") if p]:
        text += " · " + str(SUB_LABELS.get(part, part))
    return text


def field_changes(before: dict[str, Any], after: dict[str, Any]) -> list[FieldChange]:
    old, new = flatten(before), flatten(after)
    order = list(FIELD_LABELS)

    def sort_key(path: str) -> tuple[int, str]:
        top = path.split("/")[1]
        return (order.index(top) if top in order else len(order), path)

    return [FieldChange(path, path_label(path), old.get(path), new.get(path))
            for path in sorted(set(old) | set(new), key=sort_key)
            if old.get(path) != new.get(path)]


ENVELOPE_LABELS: dict[str, Any] = {"state": _l("State"), "visibility": _l("Who may see it"),
                                   "slug": _l("Address (slug)")}


def envelope_value(name: str, value: str) -> str:
    if name == "state":
        return label(vocabulary.STATES, value)
    if name == "visibility":
        return label(vocabulary.VISIBILITIES, value)
    return value


def envelope_changes(older: Any, newer: Any) -> list[tuple[str, str, str]]:
    """State, visibility and slug changes between two versions, labelled for people."""
    return [(str(ENVELOPE_LABELS[name]), envelope_value(name, str(getattr(older, name))),
             envelope_value(name, str(getattr(newer, name))))
            for name in ("state", "visibility", "slug")
            if getattr(older, name) != getattr(newer, name)]
