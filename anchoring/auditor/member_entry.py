"""The ``member.checkpoint`` log entry: a member checkpoint this hub verified and cosigned.

Appending it to the hub's own log is what lets one anchor of the hub's root commit to every
member's root. It is RFC 8785 canonical JSON like every log entry, and carries the member's
signed note with the hub's cosignature line, so the entry alone is checkable: the member key
verifies the note, the hub's witness key verifies the cosignature.

The entry type itself (its fields and their checks) is registered in anchoring/auditor/entry.py
with the dataset types. Standard library only.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from anchoring.auditor.entry import EntryError, encode_entry
from anchoring.tlog import hash_leaf

ENTRY_TYPE = "member.checkpoint"


class MemberEntryError(ValueError):
    """Not a well-formed member.checkpoint entry."""


@dataclass(frozen=True)
class MemberCheckpointEntry:
    origin: str
    size: int
    root: bytes
    checkpoint: str   # member-signed note, with the hub's cosignature line
    time: str         # RFC 3339 UTC, when the hub cosigned

    def encode(self) -> bytes:
        """Through the one entry-format module, so the hub can only log what auditors accept."""
        try:
            return encode_entry({"v": 1, "type": ENTRY_TYPE, "origin": self.origin,
                                 "size": self.size,
                                 "root": base64.b64encode(self.root).decode(),
                                 "checkpoint": self.checkpoint, "time": self.time})
        except EntryError as exc:
            raise MemberEntryError(str(exc)) from None

    def leaf_hash(self) -> bytes:
        return hash_leaf(self.encode())


def parse_member_entry(entry: bytes) -> MemberCheckpointEntry:
    """Parse and re-encode: only the canonical spelling of an entry is accepted."""
    try:
        data = json.loads(entry)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MemberEntryError(f"entry is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("type") != ENTRY_TYPE or data.get("v") != 1:
        raise MemberEntryError(f"entry is not a v1 {ENTRY_TYPE}")
    try:
        parsed = MemberCheckpointEntry(origin=str(data["origin"]), size=int(data["size"]),
                                       root=base64.b64decode(data["root"], validate=True),
                                       checkpoint=str(data["checkpoint"]),
                                       time=str(data["time"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise MemberEntryError(f"entry field missing or malformed: {exc}") from None
    if parsed.encode() != entry:
        raise MemberEntryError("entry is not in canonical form")
    return parsed
