"""Evidence that a member log forked, checkable offline by anyone (``ndr verify-evidence``).

A log that shows one history to the hub and another to someone else cannot hide it once two
of its own signed checkpoints disagree. The evidence file holds both notes, signed by the
member's key, and proves the disagreement by itself:

* ``fork-same-size``: two checkpoints of the same size with different roots.
* ``fork-inconsistent``: the checkpoint the witness cosigned (size N) and a later one
  (size M > N) together with a consistency proof *the member itself produced* from its tree
  at N to M. The proof ties the member's size-N root to its own signed size-M root; that root
  differs from the size-N root it signed before, so the member signed two different trees of
  size N. (A proof never verifies against two different old roots, or SHA-256 is broken.)

Standard library + cryptography only.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from anchoring import tlog
from anchoring.auditor.cosignature import CosignatureError, CosignatureVerifier
from anchoring.auditor.cosignature import verify_cosignatures as _verify_cosignatures
from anchoring.auditor.key_rotation import RotationError, follow_rotations
from anchoring.checkpoint import Checkpoint, open_checkpoint
from anchoring.note import NoteVerifier

FORMAT = "ndr-witness-evidence/v1"
SAME_SIZE = "fork-same-size"
INCONSISTENT = "fork-inconsistent"


def implied_old_root(proof: Sequence[bytes], old: int, new: int, new_root: bytes
                     ) -> bytes | None:
    """The size-`old` root a consistency proof commits to, if it leads to `new_root`.

    RFC 9162 §2.1.4.2 computes the old and the new root side by side from the proof alone
    (except when `old` is a power of two: then the old root is a node of the proof's path,
    not given by it, and None is returned).
    """
    if not 0 < old < new or not proof or old & (old - 1) == 0:
        return None
    if any(len(p) != tlog.HASH_SIZE for p in proof):
        return None
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            fr = tlog.hash_children(c, fr)
            sr = tlog.hash_children(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = tlog.hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or sr != new_root:
        return None
    return fr


def build_evidence(*, origin: str, member_key: str, witness_key: str, kind: str,
                   cosigned: str, conflicting: str, proof: Sequence[bytes] = (),
                   conflicting_old_root: bytes | None = None, detected_at: str,
                   rotations: Sequence[str] = ()) -> dict[str, Any]:
    """`rotations`: the member's key-rotation statements the witness followed, oldest first,
    so a fork spanning a rotation (one note by the old key, one by the new) is checkable
    from the older key."""
    return {"format": FORMAT, "origin": origin, "member_key": member_key,
            "rotations": list(rotations),
            "witness_key": witness_key, "kind": kind, "cosigned": cosigned,
            "conflicting": conflicting,
            "consistency_proof": [base64.b64encode(h).decode() for h in proof],
            "conflicting_old_root": base64.b64encode(conflicting_old_root).decode()
            if conflicting_old_root is not None else None,
            "detected_at": detected_at}


@dataclass(frozen=True)
class EvidenceStep:
    name: str
    ok: bool
    detail: str


class EvidenceError(ValueError):
    """The evidence file is malformed."""


def _b64_hash(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise EvidenceError(f"{what} must be a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise EvidenceError(f"{what} is not base64") from None
    if len(raw) != tlog.HASH_SIZE:
        raise EvidenceError(f"{what} is not a 32-byte hash")
    return raw


def parse_evidence(data: str | bytes | dict[str, Any]) -> dict[str, Any]:
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise EvidenceError(f"evidence is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise EvidenceError(f"evidence format must be {FORMAT!r}")
    for name in ("origin", "kind", "cosigned", "conflicting", "member_key"):
        if not isinstance(data.get(name), str):
            raise EvidenceError(f"evidence field {name!r} is missing or not a string")
    if data["kind"] not in (SAME_SIZE, INCONSISTENT):
        raise EvidenceError(f"unknown evidence kind {data['kind']!r}")
    return data


def verify_evidence(data: dict[str, Any], member: NoteVerifier,
                    witness: CosignatureVerifier | None = None) -> list[EvidenceStep]:
    """Check the evidence step by step; it proves a fork iff every step is ok."""
    steps: list[EvidenceStep] = []

    def step(name: str, ok: bool, detail: str) -> bool:
        steps.append(EvidenceStep(name, ok, detail))
        return ok

    origin = data["origin"]
    keys = [member]
    rotations = data.get("rotations") or []
    if rotations:
        try:
            keys = follow_rotations(member, [str(r) for r in rotations])
            step("key rotations", True, f"{len(keys) - 1} rotation(s) followed from the "
                 "given key")
        except RotationError as exc:
            step("key rotations", False, str(exc))
    notes: dict[str, Checkpoint] = {}
    for label in ("cosigned", "conflicting"):
        error = ""
        for key in reversed(keys):
            try:
                notes[label] = open_checkpoint(data[label], key, origin)
                step(f"{label} checkpoint signature", True,
                     f"signed by {key.name} ({key.vkey.rsplit('+', 2)[1]}), size "
                     f"{notes[label].size}")
                break
            except ValueError as exc:
                error = str(exc)
        else:
            step(f"{label} checkpoint signature", False, error)
    if witness is not None:
        try:
            _verify_cosignatures(data["cosigned"], [witness])
            step("witness cosignature", True, f"{witness.name} cosigned the first checkpoint")
        except CosignatureError as exc:
            step("witness cosignature", False, str(exc))
    if len(notes) != 2:
        return steps
    old, new = notes["cosigned"], notes["conflicting"]
    if data["kind"] == SAME_SIZE:
        step("same size, different roots", old.size == new.size and old.root != new.root,
             f"size {old.size}: {old.root.hex()[:16]}… vs size {new.size}: "
             f"{new.root.hex()[:16]}…")
        return steps
    try:
        proof = [_b64_hash(h, "consistency_proof") for h in data.get("consistency_proof") or []]
        other_root = _b64_hash(data.get("conflicting_old_root"), "conflicting_old_root")
    except EvidenceError as exc:
        step("member's consistency proof", False, str(exc))
        return steps
    if not step("sizes", 0 < old.size < new.size,
                f"cosigned size {old.size}, conflicting size {new.size}"):
        return steps
    try:
        tlog.check_tree(proof, new.size, new.root, old.size, other_root)
        step("member's consistency proof", True,
             f"ties its size-{old.size} root {other_root.hex()[:16]}… to its signed size "
             f"{new.size}")
    except tlog.ProofError as exc:
        step("member's consistency proof", False, str(exc))
        return steps
    step("two trees of the same size", other_root != old.root,
         f"signed size-{old.size} root {old.root.hex()[:16]}…, but its size-{new.size} "
         f"checkpoint extends {other_root.hex()[:16]}…")
    return steps
