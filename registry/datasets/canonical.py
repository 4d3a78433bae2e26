"""Canonical bytes of metadata and log entries (RFC 8785), and their hashes.

The log commits to `metadata_sha256`, so the hash must be reproducible by anyone: RFC 8785
fixes key order, number formatting and escaping.

Speed: the `rfc8785` package is pure Python (~0.4 ms per catalogue entry, the largest cost of a
bulk import). For JSON without floating-point numbers and whose object keys are all in the
Basic Multilingual Plane, RFC 8785's output is exactly what `json.dumps(sort_keys=True,
separators=(",", ":"), ensure_ascii=False)` produces: integers print the same, the escapes are
the same (\\b \\t \\n \\f \\r, other controls as lower-case \\u00xx), and sorting by UTF-16 code
units equals sorting by code points inside the BMP. Anything else takes the `rfc8785` path.
tests/catalogue/test_canonical.py holds the two paths equal on generated JSON.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

MAX_ENTRY_BYTES = 65535
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                            allow_nan=False)


class NotCanonicalisable(ValueError):
    """The value holds text that is not Unicode (lone surrogates) or numbers JSON cannot hold."""


def _fast_path_applies(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if not key.isascii() and max(map(ord, key)) > 0xFFFF:
                    return False
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float):
            return False
    return True


def canonical_json(value: Any) -> bytes:
    try:
        if _fast_path_applies(value):
            return _encoder.encode(value).encode("utf-8")
        return rfc8785.dumps(value)
    except (UnicodeEncodeError, rfc8785.CanonicalizationError, ValueError) as exc:
        raise NotCanonicalisable(str(exc)) from exc


def canonical_metadata(metadata: dict[str, Any]) -> bytes:
    """Canonical bytes of metadata that passed schema validation.

    The schema admits object keys only from its fixed (ASCII) property names and numbers only
    at `distributions[].byte_size` (an integer, which JSON Schema also lets through as 1.0), so
    the one float check needed is there; everything else goes straight to the fast encoder.
    """
    for distribution in metadata.get("distributions", ()):
        if isinstance(distribution, dict) and isinstance(distribution.get("byte_size"), float):
            return canonical_json(metadata)
    try:
        return _encoder.encode(metadata).encode("utf-8")
    except (UnicodeEncodeError, ValueError) as exc:
        raise NotCanonicalisable(str(exc)) from exc


def canonical_json_reference(value: Any) -> bytes:
    """The `rfc8785` package's output, the reference the fast path is tested against."""
    return rfc8785.dumps(value)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
