"""Canonical bytes of metadata and log entries (RFC 8785), and their hashes.

The log commits to `metadata_sha256`, so the hash must be reproducible by anyone: RFC 8785
fixes key order, number formatting and escaping.
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

MAX_ENTRY_BYTES = 65535


def canonical_json(value: Any) -> bytes:
    return rfc8785.dumps(value)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
