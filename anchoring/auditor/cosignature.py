"""C2SP tlog-cosignature (https://c2sp.org/tlog-cosignature), the verifying side: Ed25519
``cosignature/v1`` with a timestamp. Standard library + cryptography, like the rest of the
auditor, so anyone can check a witness's statement without the server.

A cosignature is one more signature line on a checkpoint note. What it signs is not the note
text itself but ``cosignature/v1\\ntime <unix seconds>\\n`` followed by the note text, and its
signature bytes are the 8-byte big-endian timestamp followed by the 64-byte Ed25519 signature.
Its key ID uses algorithm byte 0x04 (not the 0x01 of ordinary note keys), so a witness key can
never be mistaken for a log key, nor a cosignature for a checkpoint signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from anchoring.note import NoteError, Signature, split_note

ALG_COSIGNATURE_V1 = 0x04
HEADER = "cosignature/v1"
TIMESTAMP_BYTES = 8
_ED25519_SIG = 64
_MAX_TIMESTAMP = (1 << 63) - 1


class CosignatureError(NoteError):
    """A cosignature, or a witness key, is malformed or does not verify."""


def _check_name(name: str) -> None:
    if not name or "+" in name or any(ch.isspace() for ch in name):
        raise CosignatureError(f"invalid witness name {name!r}")


def cosigner_key_id(name: str, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || 0x04 || public key)[:4]."""
    _check_name(name)
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_COSIGNATURE_V1])
                          + public_key).digest()[:4]


def encode_cosigner_key(name: str, public_key: bytes) -> str:
    """The witness's vkey: ``<name>+<hex key id>+<base64(0x04 || public key)>``."""
    raw = bytes([ALG_COSIGNATURE_V1]) + public_key
    return f"{name}+{cosigner_key_id(name, public_key).hex()}+{base64.b64encode(raw).decode()}"


def signed_message(checkpoint_text: str, timestamp: int) -> bytes:
    """What a cosignature/v1 signs: header line, time line, then the whole note text."""
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise CosignatureError("cosignature timestamp is out of range")
    if not checkpoint_text.endswith("\n") or checkpoint_text.count("\n") < 3:
        raise CosignatureError("a cosigned note must have at least three lines")
    return f"{HEADER}\ntime {timestamp}\n{checkpoint_text}".encode()


@dataclass(frozen=True)
class CosignatureVerifier:
    """A trusted witness: its name and Ed25519 public key."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return cosigner_key_id(self.name, self.public_key)

    @property
    def vkey(self) -> str:
        return encode_cosigner_key(self.name, self.public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> CosignatureVerifier:
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise CosignatureError("witness key must be <name>+<hex id>+<base64 key>")
        name, hex_id, encoded = parts
        _check_name(name)
        try:
            raw = base64.b64decode(encoded, validate=True)
            claimed = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError):
            raise CosignatureError("witness key is not valid hex/base64") from None
        if len(raw) != 33 or raw[0] != ALG_COSIGNATURE_V1:
            raise CosignatureError("witness key is not an Ed25519 cosignature/v1 key (0x04)")
        if len(hex_id) != 8 or claimed != cosigner_key_id(name, raw[1:]):
            raise CosignatureError("witness key ID does not match its name and key")
        return cls(name=name, public_key=raw[1:])

    def matches(self, signature: Signature) -> bool:
        return signature.name == self.name and signature.key_id == self.key_id

    def verify(self, checkpoint_text: str, signature: Signature) -> int:
        """Return the cosignature's timestamp; raise CosignatureError unless it verifies."""
        if not self.matches(signature):
            raise CosignatureError(f"signature is not by witness {self.name}")
        sig = signature.signature
        if len(sig) != TIMESTAMP_BYTES + _ED25519_SIG:
            raise CosignatureError(f"cosignature by {self.name} has the wrong length")
        timestamp = int.from_bytes(sig[:TIMESTAMP_BYTES], "big")
        message = signed_message(checkpoint_text, timestamp)
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                sig[TIMESTAMP_BYTES:], message)
        except InvalidSignature:
            raise CosignatureError(f"cosignature by {self.name} does not verify") from None
        return timestamp


@dataclass(frozen=True)
class Cosigned:
    """A witness that vouched for a checkpoint, and when."""

    name: str
    timestamp: int


def verify_cosignatures(note: str, witnesses: list[CosignatureVerifier], *,
                        quorum: int = 1) -> list[Cosigned]:
    """Check every line by a trusted witness; at least `quorum` distinct witnesses must sign.

    Lines by unknown keys are ignored (the log's own signature among them); a line that
    claims a trusted witness but does not verify is an error, as with notes: a forgery.
    """
    text, signatures = split_note(note)
    found: dict[str, Cosigned] = {}
    for sig in signatures:
        for witness in witnesses:
            if witness.matches(sig):
                found[witness.name] = Cosigned(witness.name, witness.verify(text, sig))
    if len(found) < quorum:
        raise CosignatureError(f"{len(found)} of the required {quorum} witness cosignature(s)")
    return sorted(found.values(), key=lambda c: c.name)
