"""member.checkpoint leaves pass the auditor's one entry-format check (monitor, self-audit)."""

from __future__ import annotations

import pytest

from anchoring.auditor.entry import EntryError, parse_entry
from anchoring.auditor.member_entry import MemberCheckpointEntry, MemberEntryError
from anchoring.note import NoteSigner
from tests.federation.memberlog import MemberLog


def test_member_checkpoint_entries_are_a_known_entry_type() -> None:
    log = MemberLog(NoteSigner.generate("m.example.gov.cn/log")).extend(3)
    entry = MemberCheckpointEntry(origin=log.origin, size=3, root=log.root(), checkpoint=log.note(),
                                  time="2026-01-01T00:00:00Z").encode()
    parsed = parse_entry(entry)
    assert (parsed.type, parsed.get("size")) == ("member.checkpoint", 3)
    with pytest.raises(EntryError):
        parse_entry(entry.replace(b'"size":3', b'"size":-3'))
    with pytest.raises(MemberEntryError):
        MemberCheckpointEntry(origin=log.origin, size=3, root=b"short", checkpoint=log.note(),
                              time="2026-01-01T00:00:00Z").encode()
