"""A member's key rotation: a signed note by the *old* key naming the new one.

    ndr.key-rotation/v1
    <origin>
    <new verifier key>

Whoever trusts the old key (a hub, an auditor) can move to the new key on the old key's own
word, and nobody else can make it move: a stolen new key alone rotates nothing. The new key
must carry the origin as its name, as every checkpoint key does. Stdlib + cryptography.
"""

from __future__ import annotations

from dataclasses import dataclass

from anchoring.note import NoteError, NoteSigner, NoteVerifier, open_note

HEADER = "ndr.key-rotation/v1"


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
