"""Offline verification of one proof bundle or C2SP tlog-proof, step by step.

Each check is independent where it can be, so the report shows everything that is wrong, but
the verdict names the first failure: that is the one to investigate.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anchoring import tlog
from anchoring.auditor import entry as entry_format
from anchoring.bundle import ProofBundle, metadata_sha256
from anchoring.checkpoint import Checkpoint, open_checkpoint, open_receipt, parse_checkpoint
from anchoring.jcs import canonicalize
from anchoring.note import NoteVerifier, split_note
from anchoring.tlog_proof import TlogProof

AnchorChecker = Callable[[dict[str, Any], str], list[str]]


@dataclass(frozen=True)
class Step:
    name: str
    ok: bool
    detail: str
    skipped: bool = False


@dataclass(frozen=True)
class Report:
    steps: list[Step]

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    @property
    def first_failure(self) -> Step | None:
        return next((step for step in self.steps if not step.ok), None)


class _Checks:
    """Runs named checks, turning any exception into a FAIL line with its message."""

    def __init__(self) -> None:
        self.steps: list[Step] = []

    def run(self, name: str, check: Callable[[], str]) -> bool:
        try:
            detail = check()
        except Exception as exc:  # every failure, whatever its type, is reported, not raised
            self.steps.append(Step(name, False, str(exc) or type(exc).__name__))
            return False
        self.steps.append(Step(name, True, detail))
        return True

    def skip(self, name: str, why: str) -> None:
        self.steps.append(Step(name, True, why, skipped=True))


def _unsigned_checkpoint(note: str) -> Checkpoint:
    text, _ = split_note(note)
    return parse_checkpoint(text)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_inclusion(checks: _Checks, note: str, index: int, size: int | None,
                     leaf: bytes, path: list[bytes]) -> None:
    def inclusion() -> str:
        checkpoint = _unsigned_checkpoint(note)
        if size is not None:
            _require(checkpoint.size == size,
                     f"tree_size {size} but the checkpoint is for size {checkpoint.size}")
        tlog.check_record(path, checkpoint.size, checkpoint.root, index, leaf)
        return f"leaf {index} is in the tree of size {checkpoint.size}"

    checks.run("inclusion proof", inclusion)


def _check_checkpoint(checks: _Checks, note: str, verifier: NoteVerifier, origin: str) -> None:
    def signature() -> str:
        checkpoint = open_checkpoint(note, verifier, origin)
        return f"signed by {verifier.name}, origin {checkpoint.origin}, size {checkpoint.size}"

    checks.run("checkpoint signature", signature)


def verify_bundle(bundle: ProofBundle, verifier: NoteVerifier, *, origin: str | None = None,
                  rpc_url: str | None = None, anchor_checker: AnchorChecker | None = None
                  ) -> Report:
    origin = origin or verifier.name
    checks = _Checks()
    entry_bytes = bundle.entry.encode("utf-8")

    parsed: list[entry_format.LogEntry] = []

    def entry_format_check() -> str:
        entry = entry_format.parse_entry(entry_bytes)
        parsed.append(entry)
        return f"canonical v{entry.v} {entry.type} entry"

    checks.run("entry format", entry_format_check)
    salt = bytes.fromhex(bundle.metadata_salt) if bundle.metadata_salt else None

    if bundle.metadata is None:
        checks.skip("metadata hash", "no metadata in the bundle (restricted entry)")
    else:
        def metadata() -> str:
            computed = metadata_sha256(bundle.metadata, salt)
            _require(computed == bundle.metadata_sha256,
                     f"canonical metadata{' with its salt' if salt else ''} hashes to "
                     f"{computed}, bundle says {bundle.metadata_sha256}")
            if parsed:
                entry_format.check_metadata(parsed[0], canonicalize(bundle.metadata), salt)
            return computed + (" (salted, v2)" if salt else "")

        checks.run("metadata hash", metadata)

    def entry_commits() -> str:
        entry = json.loads(bundle.entry)
        _require(isinstance(entry, dict), "entry is not a JSON object")
        _require(entry.get("metadata_sha256") == bundle.metadata_sha256,
                 f"entry commits to metadata {entry.get('metadata_sha256')}, bundle has "
                 f"{bundle.metadata_sha256}")
        _require(entry.get("dataset", bundle.dataset) == bundle.dataset,
                 f"entry is about dataset {entry.get('dataset')}, not {bundle.dataset}")
        _require(entry.get("version", bundle.version) == bundle.version,
                 f"entry is version {entry.get('version')}, not {bundle.version}")
        return f"{entry.get('type', 'entry')} of {bundle.dataset} version {bundle.version}"

    checks.run("entry commits to metadata", entry_commits)

    leaf = entry_format.leaf_hash(entry_bytes)

    def leaf_hash() -> str:
        _require(leaf == bundle.leaf_hash, "SHA-256(0x00 || entry) differs from leaf_hash")
        return leaf.hex()

    checks.run("leaf hash", leaf_hash)
    _check_checkpoint(checks, bundle.checkpoint, verifier, origin)

    def bundle_origin() -> str:
        _require(bundle.origin == origin, f"bundle origin {bundle.origin!r}, expected {origin!r}")
        return origin

    checks.run("origin", bundle_origin)
    _check_inclusion(checks, bundle.checkpoint, bundle.index, bundle.tree_size, leaf,
                     bundle.inclusion_path)

    if bundle.receipt is None:
        checks.skip("receipt", "no receipt in the bundle")
    else:
        receipt_note = bundle.receipt

        def receipt() -> str:
            r = open_receipt(receipt_note, verifier)
            _require(r.origin == origin, f"receipt is for log {r.origin!r}")
            _require(r.index == bundle.index, f"receipt promises index {r.index}")
            _require(r.leaf_hash == leaf, "receipt promises a different leaf hash")
            return f"index {r.index} promised at {r.time.isoformat()}"

        checks.run("receipt", receipt)

    _check_anchor_consistency(checks, bundle)
    if rpc_url is None:
        checks.skip("anchors", "no --rpc given")
    else:
        def anchors() -> str:
            checker = anchor_checker
            if checker is None:
                from anchoring.auditor.onchain import check_anchors

                checker = check_anchors
            problems = checker(bundle.to_json(), rpc_url)
            _require(not problems, "; ".join(problems))
            return f"{len(bundle.anchors)} anchor(s) confirmed on chain"

        checks.run("anchors", anchors)
    return Report(checks.steps)


def _check_anchor_consistency(checks: _Checks, bundle: ProofBundle) -> None:
    """Each anchor names a root at some size >= the bundle's; its RFC 9162 consistency proof
    shows the bundle's checkpoint is a prefix of the anchored tree (so the chain, not only the
    registry, vouches for the leaf). Offline; `--rpc` then asks the chain for that root."""
    if not bundle.anchors:
        checks.skip("anchor consistency", "no anchor covers this checkpoint yet")
        return

    def consistency() -> str:
        checkpoint = _unsigned_checkpoint(bundle.checkpoint)
        for anchor in bundle.anchors:
            _require(isinstance(anchor, dict), "an anchor receipt is not an object")
            size = int(anchor["size"])
            root = base64.b64decode(anchor["root"], validate=True)
            if size == checkpoint.size:
                _require(root == checkpoint.root,
                         f"anchor at size {size} holds another root than the checkpoint")
                continue
            proof = anchor.get("consistency") or {}
            _require(proof.get("old_size") == checkpoint.size and proof.get("new_size") == size,
                     f"anchor at size {size} carries no consistency proof from size "
                     f"{checkpoint.size}")
            tlog.check_tree([base64.b64decode(h, validate=True) for h in proof["proof"]],
                            size, root, checkpoint.size, checkpoint.root)
        sizes = ", ".join(str(a["size"]) for a in bundle.anchors)
        return f"checkpoint {checkpoint.size} is a prefix of the anchored tree(s) at {sizes}"

    checks.run("anchor consistency", consistency)


def verify_tlog_proof(proof: TlogProof, verifier: NoteVerifier, *, origin: str | None = None
                      ) -> Report:
    """A tlog-proof carries the entry in its extra data; metadata and receipt are not in it."""
    origin = origin or verifier.name
    checks = _Checks()
    if proof.extra is None:
        checks.run("leaf hash", lambda: _fail("the proof carries no entry (extra data)"))
        return Report(checks.steps)
    extra = proof.extra
    leaf = entry_format.leaf_hash(extra)
    checks.run("entry format", lambda: "canonical v{0.v} {0.type} entry".format(
        entry_format.parse_entry(extra)))
    checks.run("leaf hash", lambda: f"{leaf.hex()} from the entry in the extra data")
    checks.skip("metadata hash", "metadata is not part of a tlog-proof")
    _check_checkpoint(checks, proof.checkpoint, verifier, origin)
    _check_inclusion(checks, proof.checkpoint, proof.index, None, leaf, proof.inclusion_path)
    return Report(checks.steps)


def _fail(message: str) -> str:
    raise ValueError(message)
