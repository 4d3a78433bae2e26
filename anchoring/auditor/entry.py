"""The log-entry format: the one place that builds, parses and hashes a log entry.

Both sides use it: the registry builds entries with :func:`encode_entry` (so it can only write
what an auditor accepts), and the auditor (`verify`, `monitor`) and the server's self-audit
parse every entry they read with :func:`parse_entry`. Standard library only, like the rest of
the auditor.

An entry is the RFC 8785 canonical JSON of an object with ``"v"`` (format version) and
``"type"``; the type decides the other fields. Adding a type is one :class:`EntryType` in
:data:`ENTRY_TYPES` (its versions and the fields of each); nothing else changes.

Versions of the ``dataset.*`` types:

* ``v: 1`` - ``metadata_sha256`` is hex SHA-256 of the canonical metadata.
* ``v: 2`` - ``metadata_sha256`` is hex SHA-256(salt || canonical metadata), with a random
  per-version 32-byte salt kept by the registry and given only to readers allowed to see the
  entry. Used for government-only entries, so nobody can confirm a guess of their metadata
  from the public log. Old v1 entries stay valid.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from anchoring import tlog
from anchoring.jcs import MAX_SAFE_INTEGER, CanonicalizationError, canonicalize

MAX_ENTRY_SIZE = 0xFFFF
SALT_SIZE = 32

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


class EntryError(ValueError):
    """The bytes are not a well-formed log entry of a known type and version."""


# A field check returns None when the value is fine, else what is wrong with it.
FieldCheck = Callable[[Any], str | None]


def _string(max_length: int = 500) -> FieldCheck:
    def check(value: Any) -> str | None:
        if not isinstance(value, str) or not value or len(value) > max_length:
            return f"must be a non-empty string of at most {max_length} characters"
        return None
    return check


def _positive_int(value: Any) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value < 2**31:
        return "must be an integer between 1 and 2^31-1"
    return None


def _non_negative_int(value: Any) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**53:
        return "must be a non-negative integer"
    return None


def _sha256_hex(value: Any) -> str | None:
    return None if isinstance(value, str) and _HEX64.fullmatch(value) else \
        "must be 64 lower-case hex digits"


def _rfc3339(value: Any) -> str | None:
    return None if isinstance(value, str) and _TIME.fullmatch(value) else \
        "must be RFC 3339 UTC time to the second (YYYY-MM-DDTHH:MM:SSZ)"


def _one_of(*allowed: str) -> FieldCheck:
    def check(value: Any) -> str | None:
        return None if value in allowed else f"must be one of {', '.join(allowed)}"
    return check


@dataclass(frozen=True)
class EntryVersion:
    """The fields of one version of an entry type: required ones and optional ones."""

    required: Mapping[str, FieldCheck]
    optional: Mapping[str, FieldCheck] = field(default_factory=dict)
    salted: bool = False  # metadata_sha256 commits to SHA-256(salt || metadata)


@dataclass(frozen=True)
class EntryType:
    name: str
    versions: Mapping[int, EntryVersion]


_DATASET_FIELDS: dict[str, FieldCheck] = {
    "dataset": _string(64),
    "version": _positive_int,
    "organization": _string(64),
    "metadata_sha256": _sha256_hex,
    "time": _rfc3339,
}
_DATASET_OPTIONAL: dict[str, FieldCheck] = {
    "visibility": _one_of("public", "government"),
    "slug": _string(120),
}
_DATASET_VERSIONS = {
    1: EntryVersion(required=_DATASET_FIELDS, optional=_DATASET_OPTIONAL),
    2: EntryVersion(required=_DATASET_FIELDS, optional=_DATASET_OPTIONAL, salted=True),
}

ENTRY_TYPES: dict[str, EntryType] = {
    name: EntryType(name, _DATASET_VERSIONS)
    for name in ("dataset.published", "dataset.updated", "dataset.withdrawn")
}
DATASET_TYPES = frozenset(ENTRY_TYPES)


def _base64_hash(value: Any) -> str | None:
    import base64
    import binascii

    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except binascii.Error:
        raw = b""
    return None if len(raw) == 32 and base64.b64encode(raw).decode() == value else \
        "must be the base64 of a 32-byte hash"


# Federation: a member checkpoint the hub verified and cosigned (anchoring/auditor/
# member_entry.py builds it); logging it lets the hub's anchor commit to every member's root.
ENTRY_TYPES["member.checkpoint"] = EntryType("member.checkpoint", {1: EntryVersion(required={
    "origin": _string(255), "size": _non_negative_int, "root": _base64_hash,
    "checkpoint": _string(MAX_ENTRY_SIZE), "time": _rfc3339})})


# A log's rotation of its own signing key (anchoring/auditor/key_rotation.py): the statement,
# signed by the old key, naming the new one; in the log so the rotation is in its history.
ENTRY_TYPES["log.key-rotation"] = EntryType("log.key-rotation", {1: EntryVersion(required={
    "statement": _string(MAX_ENTRY_SIZE), "time": _rfc3339})})


def register_type(entry_type: EntryType) -> None:
    """Add an entry type (e.g. federation's ``member.checkpoint``); names are never reused."""
    if entry_type.name in ENTRY_TYPES:
        raise ValueError(f"entry type {entry_type.name!r} already exists")
    ENTRY_TYPES[entry_type.name] = entry_type


@dataclass(frozen=True)
class LogEntry:
    """A parsed, validated entry: its version, type, every field, and its exact bytes."""

    v: int
    type: str
    fields: Mapping[str, Any]
    raw: bytes

    @property
    def salted(self) -> bool:
        return ENTRY_TYPES[self.type].versions[self.v].salted

    @property
    def leaf_hash(self) -> bytes:
        return leaf_hash(self.raw)

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 leaf hash SHA-256(0x00 || entry): the log's one implementation (tlog's)."""
    return tlog.hash_leaf(entry)


def _check(value: Mapping[str, Any]) -> tuple[int, str, EntryVersion]:
    version, kind = value.get("v"), value.get("type")
    if not isinstance(kind, str) or kind not in ENTRY_TYPES:
        raise EntryError(f"entry type {kind!r} is not one of {', '.join(sorted(ENTRY_TYPES))}")
    versions = ENTRY_TYPES[kind].versions
    if not isinstance(version, int) or isinstance(version, bool) or version not in versions:
        raise EntryError(f"entry version {version!r} is not one of "
                         f"{', '.join(map(str, sorted(versions)))} for type {kind}")
    spec = versions[version]
    known = {"v", "type", *spec.required, *spec.optional}
    unknown = sorted(set(value) - known)
    if unknown:
        raise EntryError(f"unknown field(s) {', '.join(unknown)} in a v{version} {kind} entry")
    for name in spec.required:
        if name not in value:
            raise EntryError(f"field {name!r} is missing")
    for name, check in {**spec.required, **spec.optional}.items():
        if name in value:
            problem = check(value[name])
            if problem is not None:
                raise EntryError(f"field {name!r} {problem}")
    return version, kind, spec


def encode_entry(value: Mapping[str, Any]) -> bytes:
    """Canonical bytes of an entry, after checking it is a valid entry of a known type."""
    _check(value)
    raw = canonical_form(value)
    if len(raw) > MAX_ENTRY_SIZE:
        raise EntryError(f"entry is {len(raw)} bytes; at most {MAX_ENTRY_SIZE}")
    return raw


def parse_entry(raw: bytes) -> LogEntry:
    """Parse and validate entry bytes: UTF-8 canonical JSON of an allowed type and version.

    Canonical means the bytes are exactly what RFC 8785 gives for the parsed value, so one
    entry has one spelling and any flipped byte that still parses is caught here too.
    """
    if len(raw) > MAX_ENTRY_SIZE:
        raise EntryError(f"entry is {len(raw)} bytes; at most {MAX_ENTRY_SIZE}")
    try:
        value = json.loads(raw.decode("utf-8"),
                           parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise EntryError(f"entry is not UTF-8 JSON: {exc}") from None
    if not isinstance(value, dict):
        raise EntryError("entry is not a JSON object")
    version, kind, _ = _check(value)
    if canonical_form(value) != raw:
        raise EntryError("entry is not RFC 8785 canonical JSON")
    return LogEntry(v=version, type=kind, fields=value, raw=raw)


_FLAT_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def canonical_form(value: Mapping[str, Any]) -> bytes:
    """RFC 8785 bytes of an entry. A flat object of ASCII keys whose values are strings and
    safe integers (every entry type so far) canonicalises exactly as the standard library's
    sorted, compact, non-ASCII-preserving encoder writes it, in C; anything else takes the
    stdlib RFC 8785 implementation. (The self-audit re-parses every entry: this is its cost.)"""
    if all(k.isascii() for k in value) and all(
            isinstance(v, str) or (type(v) is int and abs(v) <= MAX_SAFE_INTEGER)
            for v in value.values()):
        try:
            return _FLAT_ENCODER.encode(value).encode("utf-8")
        except UnicodeEncodeError:
            raise EntryError("entry contains a lone surrogate") from None
    try:
        return canonicalize(dict(value))
    except CanonicalizationError as exc:
        raise EntryError(str(exc)) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# ---------------------------------------------------------------------------------------------
# dataset.* entries and the metadata they commit to


def new_salt() -> bytes:
    import secrets

    return secrets.token_bytes(SALT_SIZE)


def metadata_commitment(canonical_metadata: bytes, salt: bytes | None = None) -> str:
    """What an entry's ``metadata_sha256`` holds: SHA-256(metadata) (v1) or
    SHA-256(salt || metadata) (v2)."""
    if salt is not None and len(salt) != SALT_SIZE:
        raise EntryError(f"a metadata salt is {SALT_SIZE} bytes")
    return hashlib.sha256((salt or b"") + canonical_metadata).hexdigest()


def dataset_entry(*, kind: str, dataset: str, version: int, organization: str,
                  metadata_sha256: str, time: str, visibility: str,
                  salted: bool = False) -> bytes:
    """The entry of a dataset version. `metadata_sha256` is the commitment (see above)."""
    return encode_entry({
        "v": 2 if salted else 1, "type": kind, "dataset": dataset, "version": version,
        "organization": organization, "metadata_sha256": metadata_sha256, "time": time,
        "visibility": visibility})


def check_metadata(entry: LogEntry, canonical_metadata: bytes, salt: bytes | None) -> str:
    """Raise EntryError unless the entry commits to this metadata (and salt, for v2)."""
    if entry.salted and salt is None:
        raise EntryError("a v2 entry commits to salted metadata; the salt is missing")
    if not entry.salted and salt is not None:
        raise EntryError("a v1 entry commits to unsalted metadata, yet a salt was given")
    computed = metadata_commitment(canonical_metadata, salt)
    if computed != entry.get("metadata_sha256"):
        raise EntryError(f"the metadata hashes to {computed}, the entry commits to "
                         f"{entry.get('metadata_sha256')}")
    return computed
