"""The log-entry format module: one builder and parser for the writer and every auditor."""

from __future__ import annotations

import pytest

from anchoring import tlog
from anchoring.auditor import entry as entry_format
from anchoring.auditor.entry import EntryError, EntryType, EntryVersion, parse_entry
from anchoring.jcs import canonicalize

FIELDS = {"type": "dataset.published", "dataset": "d-1", "version": 1, "organization": "org",
          "metadata_sha256": "ab" * 32, "time": "2025-01-01T00:00:00Z",
          "visibility": "public"}


def test_built_entries_parse_back_and_hash_once() -> None:
    raw = entry_format.dataset_entry(kind="dataset.updated", dataset="d-1", version=2,
                                     organization="org", metadata_sha256="cd" * 32,
                                     time="2025-01-01T00:00:00Z", visibility="public")
    entry = parse_entry(raw)
    assert (entry.v, entry.type, entry.get("version")) == (1, "dataset.updated", 2)
    assert not entry.salted
    assert entry.leaf_hash == tlog.hash_leaf(raw) == entry_format.leaf_hash(raw)
    salted = parse_entry(entry_format.dataset_entry(
        kind="dataset.published", dataset="d-1", version=1, organization="org",
        metadata_sha256="cd" * 32, time="2025-01-01T00:00:00Z", visibility="government",
        salted=True))
    assert salted.v == 2 and salted.salted


@pytest.mark.parametrize("raw, problem", [
    (b'{"v":1}', "entry type None"),
    (canonicalize({**FIELDS, "v": 3}), "entry version 3"),
    (canonicalize({**FIELDS, "v": 1, "type": "dataset.drafted"}), "not one of"),
    (canonicalize({**FIELDS, "v": 1, "extra": 1}), "unknown field"),
    (canonicalize({**FIELDS, "v": 1, "version": 0}), "'version'"),
    (canonicalize({**FIELDS, "v": 1, "metadata_sha256": "AB" * 32}), "'metadata_sha256'"),
    (canonicalize({**FIELDS, "v": 1, "time": "2025-01-01 00:00:00"}), "'time'"),
    (canonicalize({k: v for k, v in FIELDS.items() if k != "organization"} | {"v": 1}),
     "'organization' is missing"),
    (canonicalize({**FIELDS, "v": 1}).replace(b",", b", ", 1), "canonical"),
    (canonicalize({**FIELDS, "v": 1})[:-1], "not UTF-8 JSON"),
    (b"\xff\xfe", "not UTF-8 JSON"),
    (b"[1,2]", "not a JSON object"),
    (b'{"v":NaN}', "not UTF-8 JSON"),
    # refused either way; which message depends on the interpreter's recursion limit, which
    # other libraries in the same process may have raised
    (b"[" * 5000 + b"]" * 5000, "not UTF-8 JSON|not a JSON object"),
    (b'{"a":' + b"1" * 70000 + b"}", "at most 65535"),
])
def test_malformed_entries_are_refused_with_the_reason(raw: bytes, problem: str) -> None:
    with pytest.raises(EntryError, match=problem):
        parse_entry(raw)


def test_every_single_byte_flip_of_an_entry_is_refused_or_changes_its_meaning() -> None:
    """A flip that still parses must at least change a field (never a silent re-spelling)."""
    raw = canonicalize({**FIELDS, "v": 1})
    original = parse_entry(raw)
    for i in range(len(raw)):
        flipped = bytearray(raw)
        flipped[i] ^= 0x01
        try:
            parsed = parse_entry(bytes(flipped))
        except EntryError:
            continue
        assert dict(parsed.fields) != dict(original.fields)


def test_the_writer_cannot_build_an_entry_the_auditor_would_refuse() -> None:
    with pytest.raises(EntryError, match="'dataset'"):
        entry_format.dataset_entry(kind="dataset.published", dataset="", version=1,
                                   organization="org", metadata_sha256="ab" * 32,
                                   time="2025-01-01T00:00:00Z", visibility="public")
    with pytest.raises(EntryError, match="entry type"):
        entry_format.encode_entry({**FIELDS, "v": 1, "type": "dataset.teleported"})


def test_adding_a_type_is_one_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entry_format, "ENTRY_TYPES", dict(entry_format.ENTRY_TYPES))
    entry_format.register_type(EntryType("test.type", {1: EntryVersion(
        required={"note": lambda v: None if isinstance(v, str) else "must be a string"})}))
    raw = entry_format.encode_entry({"v": 1, "type": "test.type", "note": "hi"})
    assert parse_entry(raw).get("note") == "hi"
    with pytest.raises(EntryError, match="'note' must be a string"):
        entry_format.encode_entry({"v": 1, "type": "test.type", "note": 5})
    with pytest.raises(ValueError, match="already exists"):
        entry_format.register_type(EntryType("dataset.published", {}))


def test_v2_commits_to_salted_metadata_and_v1_stays_valid() -> None:
    metadata = canonicalize({"title": {"en": "x"}})
    salt = bytes(range(32))
    v2 = parse_entry(entry_format.dataset_entry(
        kind="dataset.published", dataset="d", version=1, organization="o",
        metadata_sha256=entry_format.metadata_commitment(metadata, salt),
        time="2025-01-01T00:00:00Z", visibility="government", salted=True))
    entry_format.check_metadata(v2, metadata, salt)
    with pytest.raises(EntryError, match="salt is missing"):
        entry_format.check_metadata(v2, metadata, None)
    with pytest.raises(EntryError, match="hashes to"):
        entry_format.check_metadata(v2, metadata, bytes(32))
    # A guess of the metadata cannot be confirmed from the public entry without the salt.
    assert entry_format.metadata_commitment(metadata) != v2.get("metadata_sha256")
    v1 = parse_entry(entry_format.dataset_entry(
        kind="dataset.published", dataset="d", version=1, organization="o",
        metadata_sha256=entry_format.metadata_commitment(metadata),
        time="2025-01-01T00:00:00Z", visibility="public"))
    entry_format.check_metadata(v1, metadata, None)
    with pytest.raises(EntryError, match="yet a salt"):
        entry_format.check_metadata(v1, metadata, salt)


def test_the_published_json_schema_matches_the_module() -> None:
    import json
    from pathlib import Path

    import jsonschema

    schema = json.loads((Path(__file__).resolve().parents[2] / "schemas" /
                         "log-entry.schema.json").read_text())
    for salted in (False, True):
        raw = entry_format.dataset_entry(
            kind="dataset.withdrawn", dataset="d", version=3, organization="o",
            metadata_sha256="ef" * 32, time="2025-01-01T00:00:00Z",
            visibility="government" if salted else "public", salted=salted)
        jsonschema.validate(json.loads(raw), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**FIELDS, "v": 3}, schema)


def test_the_fast_canonical_form_equals_rfc8785_on_hostile_strings() -> None:
    import rfc8785

    for text in ["é\u2028\"\\\x00\x1f\x7f", "\U0001f600 emoji", "中文", "</script>", ""]:
        value = {**FIELDS, "v": 1, "dataset": text or "x", "slug": "a" + text}
        assert entry_format.canonical_form(value) == rfc8785.dumps(value) == canonicalize(value)
    with pytest.raises(EntryError, match="surrogate"):
        entry_format.canonical_form({**FIELDS, "dataset": "\ud800"})
