"""C2SP tlog-checkpoint bodies (https://c2sp.org/tlog-checkpoint) and signed receipts.

A checkpoint body is ``<origin>\\n<decimal size>\\n<base64 root>\\n`` optionally followed by
extension lines; it is always carried inside a signed note (see note.py).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from anchoring.note import NoteError, NoteSigner, NoteVerifier, check_note_text, open_note

_DECIMAL = re.compile(r"0|[1-9][0-9]*")
RECEIPT_HEADER = "ndr.receipt/v1"


class CheckpointError(ValueError):
    """A checkpoint or receipt body is malformed or does not match what was expected."""


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = field(default=())

    def body(self) -> str:
        return format_checkpoint(self)


def _decode_hash(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise CheckpointError(f"{what} is not base64") from None
    if len(raw) != 32 or base64.b64encode(raw).decode() != text:
        raise CheckpointError(f"{what} is not the base64 of 32 bytes")
    return raw


def _decode_decimal(text: str, what: str) -> int:
    if not _DECIMAL.fullmatch(text):
        raise CheckpointError(f"{what} is not a decimal without leading zeroes")
    value = int(text)
    if value >= 1 << 63:
        raise CheckpointError(f"{what} is too large")
    return value


def format_checkpoint(checkpoint: Checkpoint) -> str:
    if not checkpoint.origin or "\n" in checkpoint.origin:
        raise CheckpointError("origin must be a non-empty line")
    if len(checkpoint.root) != 32 or checkpoint.size < 0:
        raise CheckpointError("root must be 32 bytes and size non-negative")
    lines = [checkpoint.origin, str(checkpoint.size), base64.b64encode(checkpoint.root).decode()]
    for ext in checkpoint.extensions:
        if not ext or "\n" in ext:
            raise CheckpointError("extension lines must be non-empty single lines")
        lines.append(ext)
    text = "\n".join(lines) + "\n"
    check_note_text(text)
    return text


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint body (the note text, without signatures)."""
    if not text.endswith("\n"):
        raise CheckpointError("checkpoint must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint needs origin, size and root lines")
    origin, size, root, *extensions = lines
    if not origin:
        raise CheckpointError("checkpoint origin is empty")
    if any(not ext for ext in extensions):
        raise CheckpointError("checkpoint extension lines must be non-empty")
    return Checkpoint(origin=origin, size=_decode_decimal(size, "tree size"),
                      root=_decode_hash(root, "root hash"), extensions=tuple(extensions))


def open_checkpoint(note: str, verifier: NoteVerifier, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint note and check its origin (defaults to the key name)."""
    opened = open_note(note, [verifier])
    checkpoint = parse_checkpoint(opened.text)
    expected = verifier.name if origin is None else origin
    if checkpoint.origin != expected:
        raise CheckpointError(f"checkpoint origin {checkpoint.origin!r}, expected {expected!r}")
    return checkpoint


# ---------------------------------------------------------------------------------------------
# Receipts: the log's signed promise that an entry got an index, before a checkpoint covers it.


@dataclass(frozen=True)
class Receipt:
    origin: str
    index: int
    leaf_hash: bytes
    time: datetime


def format_time(when: datetime) -> str:
    """RFC 3339 in UTC with a Z, second precision (one spelling per instant)."""
    if when.tzinfo is None:
        raise CheckpointError("receipt time must be timezone-aware")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_receipt(receipt: Receipt) -> str:
    """Body: a header line that can never be a log origin, then origin, index, leaf, time."""
    return (f"{RECEIPT_HEADER}\n{receipt.origin}\n{receipt.index}\n"
            f"{base64.b64encode(receipt.leaf_hash).decode()}\n{format_time(receipt.time)}\n")


def sign_receipt(signer: NoteSigner, receipt: Receipt) -> str:
    return signer.sign(format_receipt(receipt))


def parse_receipt(text: str) -> Receipt:
    lines = text.split("\n")
    if len(lines) != 6 or lines[0] != RECEIPT_HEADER or lines[5] != "":
        raise CheckpointError(f"receipt body must be {RECEIPT_HEADER} and four lines")
    try:
        when = datetime.strptime(lines[4], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise CheckpointError("receipt time is not RFC 3339 UTC") from None
    return Receipt(origin=lines[1], index=_decode_decimal(lines[2], "receipt index"),
                   leaf_hash=_decode_hash(lines[3], "receipt leaf hash"), time=when)


def open_receipt(note: str, verifier: NoteVerifier) -> Receipt:
    try:
        opened = open_note(note, [verifier])
    except NoteError as exc:
        raise CheckpointError(f"receipt signature: {exc}") from exc
    return parse_receipt(opened.text)
