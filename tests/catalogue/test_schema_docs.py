"""docs/metadata.md must be the rendering of the schema the validator enforces."""

from registry.schema_docs import DOC_PATH, render


def test_metadata_doc_matches_schema() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == render(), (
        "docs/metadata.md is stale: run `python -m registry.schema_docs`")


def test_every_schema_field_is_documented() -> None:
    from registry.datasets.validation import load_schema

    doc = DOC_PATH.read_text(encoding="utf-8")
    for name in load_schema("dataset.schema.json")["properties"]:
        assert f"| `{name}` |" in doc
