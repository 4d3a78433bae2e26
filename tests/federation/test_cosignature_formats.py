"""cosignature/v1, the tlog-witness decision and fork evidence, without a database."""

from __future__ import annotations

import base64
import json

import pytest

from anchoring import tlog
from anchoring.auditor.cosignature import (
    CosignatureError,
    CosignatureVerifier,
    cosigner_key_id,
    signed_message,
    verify_cosignatures,
)
from anchoring.auditor.evidence import (
    INCONSISTENT,
    SAME_SIZE,
    build_evidence,
    implied_old_root,
    parse_evidence,
    verify_evidence,
)
from anchoring.note import NoteSigner, key_id, split_note
from anchoring.witness import (
    AddCheckpoint,
    CosignatureSigner,
    Verdict,
    WitnessedHead,
    WitnessRequestError,
    decide,
    format_add_checkpoint,
    parse_add_checkpoint,
)
from tests.federation.memberlog import MemberLog

MEMBER = "province.example.gov.cn/log"


@pytest.fixture
def member() -> MemberLog:
    return MemberLog(NoteSigner.generate(MEMBER)).extend(11)


@pytest.fixture
def witness() -> CosignatureSigner:
    return CosignatureSigner.from_note_signer(NoteSigner.generate("hub.example.gov.cn/witness"))


def test_key_id_uses_the_cosignature_algorithm_byte(witness: CosignatureSigner) -> None:
    assert witness.key_id == cosigner_key_id(witness.name, witness.public_key)
    assert witness.key_id != key_id(witness.name, witness.public_key)  # 0x04, not 0x01
    parsed = CosignatureVerifier.from_vkey(witness.vkey)
    assert parsed.public_key == witness.public_key
    assert base64.b64decode(witness.vkey.split("+", 2)[2])[0] == 0x04
    with pytest.raises(CosignatureError):  # an ordinary note key is not a witness key
        CosignatureVerifier.from_vkey(NoteSigner.generate("x").verifier_key)


def test_signed_message_layout() -> None:
    body = "o\n3\n" + base64.b64encode(bytes(32)).decode() + "\n"
    assert signed_message(body, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\n" + body.encode())


def test_cosignature_verifies_and_a_flipped_byte_does_not(member: MemberLog,
                                                          witness: CosignatureSigner) -> None:
    note = member.note()
    text, _ = split_note(note)
    line = witness.cosign(text, 1_700_000_000)
    cosigned = verify_cosignatures(note + line, [witness.verifier])
    assert [(c.name, c.timestamp) for c in cosigned] == [(witness.name, 1_700_000_000)]
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    for position in (5, 20, len(raw) - 1):  # timestamp byte, signature bytes
        flipped = raw.copy()
        flipped[position] ^= 1
        bad = f"\u2014 {witness.name} {base64.b64encode(bytes(flipped)).decode()}\n"
        with pytest.raises(CosignatureError):
            verify_cosignatures(note + bad, [witness.verifier])
    other_text = text.replace("\n11\n", "\n12\n")
    with pytest.raises(CosignatureError):  # the cosignature is bound to this checkpoint
        verify_cosignatures(member.signer.sign(other_text) + line, [witness.verifier])
    with pytest.raises(CosignatureError):  # quorum not met
        verify_cosignatures(note + line, [witness.verifier], quorum=2)


def test_add_checkpoint_body_round_trip_and_malformed(member: MemberLog) -> None:
    proof = member.proof(5)
    body = format_add_checkpoint(5, proof, member.note())
    parsed = parse_add_checkpoint(body)
    assert (parsed.old_size, parsed.proof, parsed.note) == (5, proof, member.note())
    for bad in (b"old 05\n\n" + member.note().encode(), b"old 5\n" + member.note().encode(),
                b"old -1\n\n" + member.note().encode(), b"new 5\n\nx\n",
                b"old 5\nnot base64!\n\n" + member.note().encode(),
                b"old 5\n" + base64.b64encode(b"short") + b"\n\n" + member.note().encode(),
                b"old 5\n" + b"\n".join([base64.b64encode(bytes(32))] * 64) + b"\n\nx",
                b"\xff\xfe", b"old 1" + b"0" * 70000):
        with pytest.raises(WitnessRequestError):
            parse_add_checkpoint(bad)


def _head(log: MemberLog, size: int) -> WitnessedHead:
    return WitnessedHead(size, log.root(size), log.note(size))


def test_decide_follows_the_spec(member: MemberLog) -> None:
    v = member.signer.verifier
    note = member.note()
    assert decide(AddCheckpoint(0, [], note), v, None).verdict == Verdict.COSIGN
    assert decide(AddCheckpoint(5, member.proof(5), note), v, _head(member, 5)).verdict \
        == Verdict.COSIGN
    stale = decide(AddCheckpoint(3, member.proof(3), note), v, _head(member, 5))
    assert (stale.verdict, stale.status) == (Verdict.CONFLICT, 409)
    above = decide(AddCheckpoint(12, [], note), v, _head(member, 5))
    assert (above.verdict, above.status) == (Verdict.BAD_REQUEST, 400)
    stranger = MemberLog(NoteSigner.generate(MEMBER)).extend(11)
    forbidden = decide(AddCheckpoint(0, [], stranger.note()), v, None)
    assert (forbidden.verdict, forbidden.status) == (Verdict.FORBIDDEN, 403)
    garbage = decide(AddCheckpoint(5, [bytes(32)] * 3, note), v, _head(member, 5))
    assert (garbage.verdict, garbage.status) == (Verdict.BAD_PROOF, 422)
    nonempty = decide(AddCheckpoint(0, [bytes(32)], note), v, None)
    assert nonempty.status == 422
    same = decide(AddCheckpoint(11, [], note), v, _head(member, 11))
    assert same.verdict == Verdict.COSIGN


def test_same_size_fork_is_proven_offline(member: MemberLog, witness: CosignatureSigner
                                          ) -> None:
    twin = member.fork(6).extend(5, tag="other")
    assert twin.size == member.size and twin.root() != member.root()
    head = _head(member, 11)
    decision = decide(AddCheckpoint(11, [], twin.note()), member.signer.verifier, head)
    assert (decision.verdict, decision.status) == (Verdict.FORK, 409)
    text, _ = split_note(head.note)
    evidence = build_evidence(origin=MEMBER, member_key=member.signer.verifier_key,
                              witness_key=witness.vkey, kind=SAME_SIZE,
                              cosigned=head.note + witness.cosign(text, 1), conflicting=twin.note(),
                              detected_at="2026-01-01T00:00:00Z")
    steps = verify_evidence(parse_evidence(json.dumps(evidence)), member.signer.verifier,
                            witness.verifier)
    assert all(s.ok for s in steps), steps
    # The same notes under another key prove nothing about this member.
    other = NoteSigner.generate(MEMBER).verifier
    assert not all(s.ok for s in verify_evidence(evidence, other))
    # Two identical checkpoints are not a fork.
    evidence["conflicting"] = head.note
    assert not all(s.ok for s in verify_evidence(evidence, member.signer.verifier))


def test_inconsistent_extension_is_proven_by_the_members_own_proof(
        member: MemberLog, witness: CosignatureSigner) -> None:
    head = _head(member, 11)
    twin = member.fork(7).extend(4, tag="x").extend(6, tag="y")  # size 17, differs at 7
    proof = twin.proof(11)
    decision = decide(AddCheckpoint(11, proof, twin.note()), member.signer.verifier, head)
    assert (decision.verdict, decision.status) == (Verdict.FORK, 422)
    assert decision.implied_old_root == twin.root(11) != member.root(11)
    evidence = build_evidence(origin=MEMBER, member_key=member.signer.verifier_key,
                              witness_key=witness.vkey, kind=INCONSISTENT, cosigned=head.note,
                              conflicting=twin.note(), proof=proof,
                              conflicting_old_root=decision.implied_old_root,
                              detected_at="2026-01-01T00:00:00Z")
    assert all(s.ok for s in verify_evidence(evidence, member.signer.verifier))
    tampered = dict(evidence, conflicting_old_root=base64.b64encode(member.root(11)).decode())
    assert not all(s.ok for s in verify_evidence(tampered, member.signer.verifier))


@pytest.mark.parametrize("old,new", [(3, 8), (5, 13), (6, 7), (7, 100), (9, 64), (31, 33)])
def test_implied_old_root_matches_the_tree(old: int, new: int) -> None:
    log = MemberLog(NoteSigner.generate(MEMBER)).extend(new)
    assert implied_old_root(log.proof(old), old, new, log.root()) == log.root(old)
    assert implied_old_root(log.proof(old), old, new, bytes(32)) is None


def test_implied_old_root_is_none_for_powers_of_two() -> None:
    log = MemberLog(NoteSigner.generate(MEMBER)).extend(10)
    assert implied_old_root(log.proof(8), 8, 10, log.root()) is None
    tlog.check_tree(log.proof(8), 10, log.root(), 8, log.root(8))
