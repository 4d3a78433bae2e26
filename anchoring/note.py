"""C2SP signed notes with Ed25519 (https://c2sp.org/signed-note), compatible with Go's
golang.org/x/mod/sumdb/note key and signature encodings, so Go and other verifiers accept them.

A note is UTF-8 text ending in a newline, then a blank line, then one or more lines
``— <key name> <base64(key id || signature)>``. The signature covers the text only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

ALG_ED25519 = 0x01
_SIG_PREFIX = "\u2014 "  # em dash, space
_MAX_SIGNATURES = 100


class NoteError(ValueError):
    """The note, key or signature is malformed, or no trusted signature verifies."""


def _check_key_name(name: str) -> None:
    if not name or "+" in name or any(ch.isspace() for ch in name):
        raise NoteError(f"invalid key name {name!r}: must be non-empty, without spaces or '+'")


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    _check_key_name(name)
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()
    return digest[:4]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def encode_verifier_key(name: str, public_key: bytes) -> str:
    """``<name>+<hex key id>+<base64(0x01 || public key)>``."""
    encoded = base64.b64encode(bytes([ALG_ED25519]) + public_key).decode()
    return f"{name}+{key_id(name, public_key).hex()}+{encoded}"


@dataclass(frozen=True)
class NoteVerifier:
    """A trusted Ed25519 public key with its name."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    @property
    def vkey(self) -> str:
        return encode_verifier_key(self.name, self.public_key)

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, text)
        except InvalidSignature:
            return False
        return True

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse and check a verifier key string (the key ID must match name and key)."""
        parts = vkey.strip().split("+", 2)  # base64 may contain "+"
        if len(parts) != 3:
            raise NoteError("verifier key must be <name>+<hex id>+<base64 key>")
        name, hex_id, encoded = parts
        _check_key_name(name)
        try:
            raw = base64.b64decode(encoded, validate=True)
            claimed_id = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError) as exc:
            raise NoteError("verifier key is not valid hex/base64") from exc
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("verifier key is not an Ed25519 key")
        if len(hex_id) != 8 or claimed_id != key_id(name, raw[1:]):
            raise NoteError("verifier key ID does not match its name and key")
        return cls(name=name, public_key=raw[1:])


class NoteSigner:
    """An Ed25519 signing key with its name (for checkpoints, the log's origin)."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        _check_key_name(name)
        self.name = name
        self._private_key = private_key
        self.public_key = _raw_public(private_key.public_key())

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        return cls(name, Ed25519PrivateKey.generate())

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.public_key)

    @property
    def verifier_key(self) -> str:
        return encode_verifier_key(self.name, self.public_key)

    def signature_line(self, text: str) -> str:
        signature = self._private_key.sign(text.encode())
        encoded = base64.b64encode(self.key_id + signature).decode()
        return f"{_SIG_PREFIX}{self.name} {encoded}\n"

    def sign(self, text: str) -> str:
        """Return the signed note: text, blank line, signature line."""
        check_note_text(text)
        return text + "\n" + self.signature_line(text)

    def encode_private_key(self) -> str:
        """Go's format: ``PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>``. Secret!"""
        seed = self._private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        encoded = base64.b64encode(bytes([ALG_ED25519]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def from_private_key(cls, encoded: str) -> NoteSigner:
        parts = encoded.strip().split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            # Never echo the value: it is a secret.
            raise NoteError("private key must be PRIVATE+KEY+<name>+<hex id>+<base64 key>")
        _, _, name, hex_id, key_data = parts
        try:
            raw = base64.b64decode(key_data, validate=True)
        except binascii.Error:
            raise NoteError("private key data is not base64") from None
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("private key is not an Ed25519 key")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if signer.key_id.hex() != hex_id:
            raise NoteError("private key ID does not match its name and key")
        return signer

    def __repr__(self) -> str:  # never show the secret
        return f"NoteSigner({self.name!r}, key id {self.key_id.hex()})"


def check_note_text(text: str) -> None:
    """Note text must be non-empty UTF-8 ending in newline, without other control characters."""
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if any(ch < " " and ch != "\n" for ch in text):
        raise NoteError("note text must not contain control characters other than newline")
    if "\n\n" in text:
        raise NoteError("note text must not contain blank lines")


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class Note:
    """An opened note: its text, the signatures that verified, and the ones nobody checked."""

    text: str
    verified: list[Signature]
    unverified: list[Signature]


def split_note(note: str) -> tuple[str, list[Signature]]:
    """Separate text and signature lines (no verification)."""
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text = note[: split + 1]
    block = note[split + 2:]
    check_note_text(text)
    if not block.endswith("\n"):
        raise NoteError("note signatures must end with a newline")
    signatures = []
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise NoteError("note has too many signatures")
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise NoteError("malformed signature line")
        name, sep, encoded = line[len(_SIG_PREFIX):].partition(" ")
        if not sep:
            raise NoteError("malformed signature line")
        _check_key_name(name)
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise NoteError("signature is not base64") from None
        # Only the canonical spelling: otherwise one signature has several texts, and a
        # note kept as evidence could be "changed" without invalidating it.
        if base64.b64encode(raw).decode() != encoded:
            raise NoteError("signature is not canonical base64")
        if len(raw) < 5:
            raise NoteError("signature is too short")
        signatures.append(Signature(name=name, key_id=raw[:4], signature=raw[4:]))
    return text, signatures


def open_note(note: str, verifiers: list[NoteVerifier]) -> Note:
    """Verify a note against trusted keys; at least one must have signed it.

    Signatures by unknown keys are returned unverified (witness cosignatures, for instance).
    A signature that claims a trusted key but does not verify is an error, not a skip:
    someone is presenting a forgery.
    """
    text, signatures = split_note(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    verified: list[Signature] = []
    unverified: list[Signature] = []
    for sig in signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            unverified.append(sig)
            continue
        if not verifier.verify(text.encode(), sig.signature):
            raise NoteError(f"invalid signature by key {sig.name}")
        verified.append(sig)
    if not verified:
        raise NoteError("note has no signature by a trusted key")
    return Note(text=text, verified=verified, unverified=unverified)
