"""docs/metadata.md is generated from schemas/dataset.schema.json, so the field documentation a
data officer reads is the schema the validator enforces (`python -m registry.schema_docs`)."""

from __future__ import annotations

import json
import sys
from typing import Any

from registry.config import PROJECT_ROOT
from registry.datasets.validation import load_schema

DOC_PATH = PROJECT_ROOT / "docs" / "metadata.md"

INTRO = """# Dataset metadata, field by field

Generated from `schemas/dataset.schema.json` (JSON Schema 2020-12) by
`python -m registry.schema_docs`; a test fails if this file and the schema disagree.

Every dataset version carries one metadata object. Its RFC 8785 canonical form is hashed
(`metadata_sha256`) and that hash is what the transparency log commits to. Unknown fields are
rejected, and every failing field is reported by its JSON Pointer (for example
`/metadata/distributions/0/checksum/value`).

Required: `title` and `description`, each in Chinese (`zh`) and/or English (`en`).

The first part is DCAT-AP 3 core (the DCAT property is named in each description); the second
part is the national government data directory (政务信息资源目录) fields.
"""


def _type_of(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return {"localized_text": "text {zh, en}", "localized_long_text": "long text {zh, en}",
                "distribution": "distribution"}.get(name, name)
    if "enum" in schema:
        return "one of: " + ", ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type", "")
    if kind == "array":
        return f"list of {_type_of(schema.get('items', {}), defs)}"
    if kind == "object":
        return "object"
    if "pattern" in schema and kind == "string":
        return f"string matching `{schema['pattern']}`"
    return str(kind)


def _rows(properties: dict[str, Any], defs: dict[str, Any], prefix: str,
          required: list[str]) -> list[str]:
    rows = []
    for name, schema in properties.items():
        path = f"{prefix}{name}"
        note = schema.get("description", "")
        req = "yes" if name in required else ""
        rows.append(f"| `{path}` | {_type_of(schema, defs)} | {req} | {note} |")
        if schema.get("type") == "object" and "properties" in schema:
            rows.extend(_rows(schema["properties"], defs, f"{path}.",
                              schema.get("required", [])))
    return rows


def render() -> str:
    schema = load_schema("dataset.schema.json")
    defs = schema["$defs"]
    table = ["| field | type | required | meaning |", "|---|---|---|---|"]
    table += _rows(schema["properties"], defs, "", schema.get("required", []))
    distribution = defs["distribution"]
    dist_table = ["| field | type | required | meaning |", "|---|---|---|---|"]
    dist_table += _rows(distribution["properties"], defs, "distributions[].",
                        distribution.get("required", []))
    example = {"title": {"zh": "全国公路交通流量统计", "en": "National road traffic counts"},
               "description": {"zh": "各省公路交通流量月度统计。"},
               "sharing": {"type": "conditional", "conditions": "仅限政府部门用于交通规划"},
               "open_attribute": "conditional", "update_cycle": "monthly",
               "data_grade": "general"}
    return "\n".join([
        INTRO, "## Fields", "", *table, "", "## Distributions", "", *dist_table, "",
        "## Rules beyond single fields", "",
        "- `sharing.conditions` is required when `sharing.type` is `conditional`.",
        "- Text must be valid Unicode: lone UTF-16 surrogates (possible in JSON escapes) are "
        "rejected, because the metadata could not be canonicalised.",
        "", "## A minimal valid entry", "", "```json",
        json.dumps(example, ensure_ascii=False, indent=2), "```", ""])


def main() -> None:
    DOC_PATH.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {DOC_PATH}\n")


if __name__ == "__main__":
    main()
