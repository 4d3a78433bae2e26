"""C2SP tlog-witness (https://c2sp.org/tlog-witness): the witness's rules, without storage.

A hub witnesses its member registries: a member POSTs ``add-checkpoint`` with the size the
witness last cosigned, a consistency proof from there, and its new signed checkpoint; the
witness answers with a cosignature/v1 line, or refuses with the status code the spec gives:

* 400 - the request is malformed, or the old size is above the checkpoint size
* 403 - no signature by the member's key (or the member is quarantined after a fork)
* 404 - the checkpoint's origin is not a member
* 409 - the old size is not what the witness cosigned last (body: that size), or the same
  size with another root (a fork, kept as evidence)
* 422 - the consistency proof does not verify (kept as evidence when it proves a fork)

`decide` is pure: the caller reads the witnessed head under a lock, calls it, and stores the
outcome in the same transaction, which is the atomicity the spec requires.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from anchoring import tlog
from anchoring.auditor.cosignature import (
    TIMESTAMP_BYTES,
    CosignatureVerifier,
    cosigner_key_id,
    encode_cosigner_key,
    signed_message,
)
from anchoring.auditor.evidence import implied_old_root
from anchoring.checkpoint import Checkpoint, CheckpointError, parse_checkpoint
from anchoring.note import NoteError, NoteSigner, NoteVerifier, open_note, split_note

MAX_PROOF_LINES = 63
MAX_REQUEST_BYTES = 64 * 1024
_OLD = re.compile(r"old (0|[1-9][0-9]{0,18})")
SIZE_CONTENT_TYPE = "text/x.tlog.size"


class WitnessRequestError(ValueError):
    """The add-checkpoint body is malformed (400)."""


class CosignatureSigner:
    """The witness's key: signs cosignature/v1 lines. Distinct from the hub's log key."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self.name = name
        self._key = private_key
        self.public_key = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = cosigner_key_id(name, self.public_key)

    @classmethod
    def from_note_signer(cls, signer: NoteSigner) -> CosignatureSigner:
        """Reuse the 0600 key-file format of log keys (``PRIVATE+KEY+...``) for the witness."""
        seed = base64.b64decode(signer.encode_private_key().split("+", 4)[4])[1:]
        return cls(signer.name, Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def vkey(self) -> str:
        return encode_cosigner_key(self.name, self.public_key)

    @property
    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self.name, self.public_key)

    def cosign(self, checkpoint_text: str, timestamp: int) -> str:
        """One note signature line, ``— <name> base64(key id || timestamp || signature)``."""
        signature = self._key.sign(signed_message(checkpoint_text, timestamp))
        raw = self.key_id + timestamp.to_bytes(TIMESTAMP_BYTES, "big") + signature
        return f"\u2014 {self.name} {base64.b64encode(raw).decode()}\n"

    def __repr__(self) -> str:
        return f"CosignatureSigner({self.name!r})"


@dataclass(frozen=True)
class AddCheckpoint:
    old_size: int
    proof: list[bytes]
    note: str


def format_add_checkpoint(old_size: int, proof: list[bytes], note: str) -> bytes:
    lines = [f"old {old_size}"] + [base64.b64encode(h).decode() for h in proof]
    return ("\n".join(lines) + "\n\n" + note).encode()


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    if len(body) > MAX_REQUEST_BYTES:
        raise WitnessRequestError("request body is too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WitnessRequestError("request body is not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    if not sep or not note:
        raise WitnessRequestError("no empty line before the checkpoint")
    lines = head.split("\n")
    m = _OLD.fullmatch(lines[0])
    if m is None:
        raise WitnessRequestError("first line must be 'old <size>' without leading zeroes")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise WitnessRequestError(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for line in lines[1:]:
        try:
            digest = base64.b64decode(line, validate=True)
        except binascii.Error:
            raise WitnessRequestError("a consistency proof line is not base64") from None
        if len(digest) != tlog.HASH_SIZE:
            raise WitnessRequestError("a consistency proof line is not a 32-byte hash")
        proof.append(digest)
    return AddCheckpoint(old_size=int(m[1]), proof=proof, note=note)


def checkpoint_origin(note: str) -> str:
    """The origin line of a note, before any signature is checked (to find the member)."""
    try:
        text, _ = split_note(note)
        return parse_checkpoint(text).origin
    except (NoteError, CheckpointError) as exc:
        raise WitnessRequestError(f"not a checkpoint note: {exc}") from None


@dataclass(frozen=True)
class WitnessedHead:
    """What the witness cosigned last for one log."""

    size: int
    root: bytes
    note: str


class Verdict(StrEnum):
    COSIGN = "cosign"
    BAD_REQUEST = "bad-request"       # 400
    FORBIDDEN = "forbidden"           # 403
    CONFLICT = "conflict"             # 409, stale old size
    FORK = "fork"                     # 409 same size other root, or 422 with proof of fork
    BAD_PROOF = "bad-proof"           # 422, nothing proven


STATUS = {Verdict.COSIGN: 200, Verdict.BAD_REQUEST: 400, Verdict.FORBIDDEN: 403,
          Verdict.CONFLICT: 409, Verdict.BAD_PROOF: 422}


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    detail: str
    checkpoint: Checkpoint | None = None
    checkpoint_text: str = ""
    implied_old_root: bytes | None = None  # the member's own tree at the old size (fork)
    earlier: WitnessedHead | None = None  # a rollback: what was cosigned at this smaller size

    @property
    def status(self) -> int:
        if self.verdict == Verdict.FORK:
            return 409 if self.checkpoint and self.implied_old_root is None else 422
        return STATUS[self.verdict]


def ties_old_root(proof: list[bytes], old: int, new: int, new_root: bytes,
                  old_root: bytes) -> bool:
    """Does the proof tie this size-`old` root to the signed size-`new` root?"""
    try:
        tlog.check_tree(proof, new, new_root, old, old_root)
    except tlog.ProofError:
        return False
    return True


def decide(request: AddCheckpoint, member: NoteVerifier, head: WitnessedHead | None, *,
           old_root_hint: bytes | None = None,
           cosigned_at: Callable[[int], WitnessedHead | None] | None = None) -> Decision:
    """Apply tlog-witness's checks in the spec's order. `head` is None if never cosigned.

    Two extra inputs turn a refusal into proven evidence where the proof alone cannot:

    * `old_root_hint`: the member's own size-`head.size` root, read from its tiles by the
      caller. When the old size is a power of two the consistency proof omits the old root
      (RFC 9162 §2.1.4.2), so nothing in the request names the member's other tree; the hint
      is believed only if the member's proof ties it to the member's signed new root.
    * `cosigned_at(size)`: what the witness cosigned at a size below its head. A member that
      signs a smaller checkpoint (a rollback) whose root differs from the one cosigned at that
      size has signed two trees of one size.
    """
    try:
        opened = open_note(request.note, [member])
        checkpoint = parse_checkpoint(opened.text)
    except (NoteError, CheckpointError) as exc:
        return Decision(Verdict.FORBIDDEN, f"checkpoint not signed by {member.name}: {exc}")
    if head is not None and checkpoint.size < head.size and cosigned_at is not None:
        earlier = cosigned_at(checkpoint.size)
        if earlier is not None and earlier.root != checkpoint.root:
            return Decision(Verdict.FORK, f"rollback: another root signed for size "
                            f"{checkpoint.size}, below the cosigned size {head.size}",
                            checkpoint, opened.text, earlier=earlier)
    if request.old_size > checkpoint.size:
        return Decision(Verdict.BAD_REQUEST,
                        f"old size {request.old_size} is above the checkpoint size "
                        f"{checkpoint.size}", checkpoint, opened.text)
    known = head.size if head else 0
    if request.old_size != known:
        return Decision(Verdict.CONFLICT, f"last cosigned size is {known}", checkpoint,
                        opened.text)
    if head is None or head.size == 0:
        if request.proof:
            return Decision(Verdict.BAD_PROOF, "the proof must be empty from size 0",
                            checkpoint, opened.text)
        if checkpoint.size == 0 and checkpoint.root != tlog.empty_tree_hash():
            return Decision(Verdict.BAD_PROOF, "an empty tree has another root", checkpoint,
                            opened.text)
        return Decision(Verdict.COSIGN, "first checkpoint", checkpoint, opened.text)
    if checkpoint.size == head.size:
        if request.proof:
            return Decision(Verdict.BAD_PROOF, "the proof between equal sizes must be empty",
                            checkpoint, opened.text)
        if checkpoint.root != head.root:
            return Decision(Verdict.FORK, f"two roots signed for size {head.size}",
                            checkpoint, opened.text)
        return Decision(Verdict.COSIGN, "same checkpoint", checkpoint, opened.text)
    try:
        tlog.check_tree(request.proof, checkpoint.size, checkpoint.root, head.size, head.root)
    except tlog.ProofError as exc:
        implied = implied_old_root(request.proof, head.size, checkpoint.size, checkpoint.root)
        if implied is None and old_root_hint is not None and ties_old_root(
                request.proof, head.size, checkpoint.size, checkpoint.root, old_root_hint):
            implied = old_root_hint  # a power-of-two old size: the root read from its tiles
        if implied is not None and implied != head.root:
            return Decision(Verdict.FORK, f"the member's own proof shows another tree at size "
                            f"{head.size}", checkpoint, opened.text, implied_old_root=implied)
        return Decision(Verdict.BAD_PROOF, f"consistency proof: {exc}", checkpoint, opened.text)
    return Decision(Verdict.COSIGN, f"consistent with size {head.size}", checkpoint,
                    opened.text)
