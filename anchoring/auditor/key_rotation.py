"""A member's key rotation: a signed note by the *old* key naming the new one.

    ndr.key-rotation/v1
    <origin>
    <new verifier key>

Whoever trusts the old key (a hub, an auditor) can move to the new key on the old key's own
word, and nobody else can make it move: a stolen new key alone rotates nothing. The new key
must carry the origin as its name, as every checkpoint key does. Stdlib + cryptography.

A log that rotates records the statement as a ``log.key-rotation`` leaf of its own log (so the
rotation is in its append-only, witnessed history) and serves every statement, oldest first,
at ``<log prefix>/key-rotations`` (JSON ``{"origin", "rotations": [{"statement",
"leaf_index"}]}``). A reader that trusts one key of the log follows the chain from there with
`follow_rotations` and accepts checkpoints signed by any key of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from anchoring.auditor.entry import EntryError, encode_entry
from anchoring.note import NoteError, NoteSigner, NoteVerifier, open_note

HEADER = "ndr.key-rotation/v1"
ENTRY_TYPE = "log.key-rotation"
WELL_KNOWN = "key-rotations"  # under the log prefix, next to "checkpoint"


class RotationError(ValueError):
    """The statement is malformed, or not signed by the key it rotates away from."""


@dataclass(frozen=True)
class Rotation:
    origin: str
    new_key: NoteVerifier
    statement: str


def sign_rotation(old: NoteSigner, new_vkey: str) -> str:
    new = NoteVerifier.from_vkey(new_vkey)
    if new.name != old.name:
        raise RotationError(f"the new key is named {new.name!r}, not the origin {old.name!r}")
    if new.public_key == old.public_key:
        raise RotationError("the new key is the old key")
    return old.sign(f"{HEADER}\n{old.name}\n{new.vkey}\n")


def open_rotation(statement: str, old: NoteVerifier) -> Rotation:
    try:
        text = open_note(statement, [old]).text
    except NoteError as exc:
        raise RotationError(f"not signed by the current key: {exc}") from None
    lines = text.split("\n")
    if len(lines) != 4 or lines[0] != HEADER or lines[3] != "":
        raise RotationError(f"the statement must be {HEADER}, the origin and the new key")
    origin, new_vkey = lines[1], lines[2]
    try:
        new = NoteVerifier.from_vkey(new_vkey)
    except NoteError as exc:
        raise RotationError(f"new key: {exc}") from None
    if origin != old.name or new.name != origin:
        raise RotationError("the statement rotates another origin's key")
    if new.public_key == old.public_key:
        raise RotationError("the new key is the old key")
    return Rotation(origin=origin, new_key=new, statement=statement)


def rotation_entry(statement: str, time: str) -> bytes:
    """The log entry recording a rotation (through the one entry-format module)."""
    try:
        return encode_entry({"v": 1, "type": ENTRY_TYPE, "statement": statement, "time": time})
    except EntryError as exc:
        raise RotationError(str(exc)) from None


def follow_rotations(trusted: NoteVerifier, statements: Sequence[str]) -> list[NoteVerifier]:
    """Every key of the log from `trusted` on, oldest first, each vouched for by the one
    before it. Statements before the trusted key (made by keys this reader never trusted) are
    passed over; after it the chain must be unbroken, or RotationError."""
    chain = [trusted]
    for statement in statements:
        try:
            chain.append(open_rotation(statement, chain[-1]).new_key)
        except RotationError:
            if len(chain) > 1:
                raise RotationError("a rotation statement is not signed by the key before it; "
                                    f"the chain breaks after {chain[-1].vkey}") from None
    return chain


def verify_chain(first_key: str, statements: Sequence[tuple[str, str]]) -> list[NoteVerifier]:
    """A log's own record (first key, then (statement, new key) per rotation), checked link by
    link: every key it has used, oldest first."""
    chain = [NoteVerifier.from_vkey(first_key)]
    for statement, new_key in statements:
        rotation = open_rotation(statement, chain[-1])
        if rotation.new_key.vkey != new_key:
            raise RotationError("a recorded rotation names another key than its statement")
        chain.append(rotation.new_key)
    return chain
