"""The hub as a C2SP tlog-witness for its members, with its own log as the record.

One write transaction per submission: lock the member's row, apply `anchoring.witness.decide`,
and store the outcome — the new head, the `member.checkpoint` leaf of the hub's log, or the
evidence of a fork — before answering. Check and store are atomic, as the spec requires: two
racing submissions are serialised by the row lock (and SQLite's BEGIN IMMEDIATE).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from anchoring.auditor.evidence import INCONSISTENT, SAME_SIZE, build_evidence
from anchoring.auditor.member_entry import MemberCheckpointEntry
from anchoring.checkpoint import format_time
from anchoring.log_store import TransparencyLog
from anchoring.note import NoteVerifier, Signature, open_note
from anchoring.witness import (
    SIZE_CONTENT_TYPE,
    AddCheckpoint,
    CosignatureSigner,
    Decision,
    Verdict,
    WitnessedHead,
    WitnessRequestError,
    checkpoint_origin,
    decide,
    parse_add_checkpoint,
)
from registry.database import serialize_catalogue_writes
from registry.federation.models import (
    FederationMember,
    MemberStatus,
    WitnessedCheckpoint,
    WitnessEvidence,
)
from registry.timefmt import utc_now


@dataclass(frozen=True)
class WitnessResponse:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"
    verdict: str = ""
    hub_leaf_index: int | None = None


def signature_line(sig: Signature) -> str:
    return f"\u2014 {sig.name} {base64.b64encode(sig.key_id + sig.signature).decode()}\n"


def member_signed_note(note: str, member: NoteVerifier) -> str:
    """The note with only the member's own verified signature(s): what the hub keeps."""
    opened = open_note(note, [member])
    return opened.text + "\n" + "".join(signature_line(s) for s in opened.verified)


class HubWitness:
    """Cosigns member checkpoints and records each one as a leaf of the hub's log."""

    def __init__(self, signer: CosignatureSigner, log: TransparencyLog,
                 clock: Callable[[], float] = time.time) -> None:
        self.signer = signer
        self.log = log
        self._clock = clock

    def add_checkpoint(self, session: Session, body: bytes) -> WitnessResponse:
        """The HTTP handler's work: parse, then `submit`."""
        try:
            request = parse_add_checkpoint(body)
            origin = checkpoint_origin(request.note)
        except WitnessRequestError as exc:
            return WitnessResponse(400, f"{exc}\n", verdict=Verdict.BAD_REQUEST)
        return self.submit(session, origin, request)

    def submit(self, session: Session, origin: str, request: AddCheckpoint) -> WitnessResponse:
        serialize_catalogue_writes(session)  # the hub log append below takes its turn too
        member = session.scalar(select(FederationMember).where(
            FederationMember.origin == origin).with_for_update())
        if member is None or member.status != MemberStatus.ACTIVE:
            return WitnessResponse(404, f"unknown log origin {origin!r}\n", verdict="unknown")
        if member.alarm:
            return WitnessResponse(403, f"not cosigning {origin}: {member.alarm}\n",
                                   verdict="quarantined")
        verifier = NoteVerifier.from_vkey(member.verifier_key)
        head = None
        if member.witnessed_root is not None and member.witnessed_note is not None:
            head = WitnessedHead(int(member.witnessed_size), bytes(member.witnessed_root),
                                 member.witnessed_note)
        decision = decide(request, verifier, head)
        if decision.verdict != Verdict.FORBIDDEN:
            member.last_seen_at = utc_now()
        if decision.verdict == Verdict.COSIGN:
            return self._cosign(session, member, verifier, request, decision, head)
        if decision.verdict == Verdict.CONFLICT:
            known = head.size if head else 0
            return WitnessResponse(409, f"{known}\n", SIZE_CONTENT_TYPE, Verdict.CONFLICT)
        if decision.verdict == Verdict.FORK and head is not None:
            self._record_fork(session, member, verifier, request, decision, head)
            return WitnessResponse(decision.status, f"{decision.detail}\n",
                                   verdict=Verdict.FORK)
        if decision.verdict == Verdict.BAD_PROOF:
            member.last_error = f"{format_time(datetime.now(UTC))} refused: {decision.detail}"
        return WitnessResponse(decision.status, f"{decision.detail}\n",
                               verdict=decision.verdict)

    def _cosign(self, session: Session, member: FederationMember, verifier: NoteVerifier,
                request: AddCheckpoint, decision: Decision, head: WitnessedHead | None
                ) -> WitnessResponse:
        checkpoint = decision.checkpoint
        assert checkpoint is not None
        timestamp = int(self._clock())
        line = self.signer.cosign(decision.checkpoint_text, timestamp)
        leaf_index = None
        if head is None or checkpoint.size > head.size:
            kept = member_signed_note(request.note, verifier) + line
            entry = MemberCheckpointEntry(
                origin=checkpoint.origin, size=checkpoint.size, root=checkpoint.root,
                checkpoint=kept, time=format_time(datetime.fromtimestamp(timestamp, UTC)))
            (leaf,) = self.log.append(session, [entry.encode()])
            leaf_index = leaf.index
            session.add(WitnessedCheckpoint(
                origin=checkpoint.origin, size=checkpoint.size, root=checkpoint.root,
                note=kept, cosignature=line, timestamp=timestamp, hub_leaf_index=leaf_index))
            member.witnessed_size = checkpoint.size
            member.witnessed_root = checkpoint.root
            member.witnessed_note = kept
            member.witnessed_at = utc_now()
        member.last_error = None
        return WitnessResponse(200, line, verdict=Verdict.COSIGN, hub_leaf_index=leaf_index)

    def _record_fork(self, session: Session, member: FederationMember, verifier: NoteVerifier,
                     request: AddCheckpoint, decision: Decision, head: WitnessedHead) -> None:
        same_size = decision.implied_old_root is None
        evidence = build_evidence(
            origin=member.origin, member_key=member.verifier_key, witness_key=self.signer.vkey,
            kind=SAME_SIZE if same_size else INCONSISTENT, cosigned=head.note,
            conflicting=member_signed_note(request.note, verifier),
            proof=[] if same_size else request.proof,
            conflicting_old_root=decision.implied_old_root,
            detected_at=format_time(datetime.now(UTC)))
        session.add(WitnessEvidence(origin=member.origin, kind=evidence["kind"],
                                    evidence=json.dumps(evidence, indent=1)))
        member.alarm = (f"{evidence['kind']} detected {evidence['detected_at']}: "
                        f"{decision.detail}; cosigning stopped")
