"""The JSON proof bundle (``ndr-proof-bundle/v1``): everything an auditor needs, offline, to
check that one dataset version is what the log recorded, and where it was anchored.

It is the contract with the browser verifier and ``ndr verify``; field names are fixed.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from anchoring.auditor.entry import SALT_SIZE, leaf_hash, metadata_commitment
from anchoring.jcs import canonicalize
from anchoring.tlog_proof import TlogProof

FORMAT = "ndr-proof-bundle/v1"


class BundleError(ValueError):
    """The bundle is malformed (a missing field or a field of the wrong type)."""


@dataclass(frozen=True)
class ProofBundle:
    origin: str
    dataset: str
    version: int
    entry: str
    metadata: dict[str, Any] | None
    metadata_sha256: str
    index: int
    leaf_hash: bytes
    tree_size: int
    inclusion_path: list[bytes]
    checkpoint: str
    receipt: str | None
    anchors: list[Any]
    metadata_salt: str | None = None  # hex; only for v2 (salted, government-only) entries

    def to_json(self) -> dict[str, Any]:
        body = {
            "format": FORMAT,
            "origin": self.origin,
            "dataset": self.dataset,
            "version": self.version,
            "entry": self.entry,
            "metadata": self.metadata,
            "metadata_sha256": self.metadata_sha256,
            "index": self.index,
            "leaf_hash": base64.b64encode(self.leaf_hash).decode(),
            "tree_size": self.tree_size,
            "inclusion_path": [base64.b64encode(h).decode() for h in self.inclusion_path],
            "checkpoint": self.checkpoint,
            "receipt": self.receipt,
            "anchors": self.anchors,
        }
        if self.metadata_salt is not None:
            body["metadata_salt"] = self.metadata_salt
        return body

    def to_tlog_proof(self) -> TlogProof:
        """The same inclusion proof as C2SP tlog-proof, the entry bytes carried as extra data."""
        return TlogProof(index=self.index, inclusion_path=list(self.inclusion_path),
                         checkpoint=self.checkpoint, extra=self.entry.encode())


def metadata_sha256(metadata: Any, salt: bytes | None = None) -> str:
    """Hex SHA-256 of the RFC 8785 canonical metadata (salted for a v2 entry), as committed
    to by the log entry."""
    return metadata_commitment(canonicalize(metadata), salt)


def build_bundle(*, origin: str, dataset: str, version: int, entry: bytes,
                 metadata: dict[str, Any] | None, index: int, tree_size: int,
                 inclusion_path: list[bytes], checkpoint: str, receipt: str | None = None,
                 anchors: list[Any] | None = None, metadata_salt: bytes | None = None
                 ) -> ProofBundle:
    """Assemble a bundle from what the registry stored; the hashes are computed here, once."""
    return ProofBundle(
        origin=origin, dataset=dataset, version=version, entry=entry.decode("utf-8"),
        metadata=metadata,
        metadata_sha256=metadata_sha256(metadata, metadata_salt) if metadata is not None
        else str(json.loads(entry).get("metadata_sha256", "")),
        index=index, leaf_hash=leaf_hash(entry), tree_size=tree_size,
        inclusion_path=list(inclusion_path), checkpoint=checkpoint, receipt=receipt,
        anchors=list(anchors or []),
        metadata_salt=metadata_salt.hex() if metadata_salt is not None else None)


def _field(data: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in data:
        raise BundleError(f"bundle field {name!r} is missing")
    value = data[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BundleError(f"bundle field {name!r} has the wrong type")
    return value


def _hash(text: str, name: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise BundleError(f"bundle field {name!r} is not base64") from None
    if len(raw) != 32:
        raise BundleError(f"bundle field {name!r} is not a 32-byte hash")
    return raw


def parse_bundle(data: dict[str, Any] | str | bytes) -> ProofBundle:
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise BundleError(f"bundle is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BundleError("bundle must be a JSON object")
    if data.get("format") != FORMAT:
        raise BundleError(f"bundle format must be {FORMAT!r}")
    path = _field(data, "inclusion_path", list)
    receipt = data.get("receipt")
    if receipt is not None and not isinstance(receipt, str):
        raise BundleError("bundle field 'receipt' has the wrong type")
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise BundleError("bundle field 'metadata' has the wrong type")
    salt = data.get("metadata_salt")
    if salt is not None and not (isinstance(salt, str) and _is_salt(salt)):
        raise BundleError("bundle field 'metadata_salt' must be 64 lower-case hex digits")
    return ProofBundle(
        origin=_field(data, "origin", str), dataset=_field(data, "dataset", str),
        version=_field(data, "version", int), entry=_field(data, "entry", str),
        metadata=metadata, metadata_sha256=_field(data, "metadata_sha256", str),
        index=_field(data, "index", int),
        leaf_hash=_hash(_field(data, "leaf_hash", str), "leaf_hash"),
        tree_size=_field(data, "tree_size", int),
        inclusion_path=[_hash(h, "inclusion_path") if isinstance(h, str)
                        else _raise_bad_path() for h in path],
        checkpoint=_field(data, "checkpoint", str), receipt=receipt,
        anchors=list(data.get("anchors") or []), metadata_salt=salt)


def _is_salt(text: str) -> bool:
    return len(text) == 2 * SALT_SIZE and all(c in "0123456789abcdef" for c in text)


def _raise_bad_path() -> bytes:
    raise BundleError("bundle field 'inclusion_path' must be a list of base64 hashes")
