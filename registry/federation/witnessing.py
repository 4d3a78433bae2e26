"""The hub as a C2SP tlog-witness for its members, with its own log as the record.

One write transaction per submission: lock the member's row, apply `anchoring.witness.decide`,
and store the outcome — the new head, the `member.checkpoint` leaf of the hub's log, or the
evidence of a fork — before answering. Check and store are atomic, as the spec requires: two
racing submissions are serialised by the row lock (and SQLite's BEGIN IMMEDIATE).
"""

from __future__ import annotations

import base64
import http.client
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from anchoring import tlog
from anchoring.auditor.evidence import INCONSISTENT, SAME_SIZE, build_evidence
from anchoring.auditor.member_entry import MemberCheckpointEntry
from anchoring.auditor.monitor import FetchError, TileClient
from anchoring.checkpoint import CheckpointError, format_time, parse_checkpoint
from anchoring.log_store import TransparencyLog
from anchoring.note import NoteError, NoteVerifier, Signature, open_note, split_note
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
    ties_old_root,
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


def member_root_at(url: str, size: int, timeout: float = 5.0) -> bytes:
    """A member's tree hash at a power-of-two `size`, from the one hash tile that holds it.

    A complete subtree [0, 2^L) is the hash of the first 2^(L mod 8) hashes of tile
    (L div 8, 0), which the member serves as a partial tile of that width."""
    level = size.bit_length() - 1
    width = 1 << (level % tlog.TILE_HEIGHT)
    tile = tlog.Tile(level=level // tlog.TILE_HEIGHT, n=0, width=width)
    hashes = tlog.split_hash_tile(
        TileClient(url.rstrip("/") + "/log/", timeout=timeout).get(tile.path()), width)
    while len(hashes) > 1:
        hashes = [tlog.hash_children(hashes[i], hashes[i + 1])
                  for i in range(0, len(hashes), 2)]
    return hashes[0]


class HubWitness:
    """Cosigns member checkpoints and records each one as a leaf of the hub's log."""

    def __init__(self, signer: CosignatureSigner, log: TransparencyLog,
                 clock: Callable[[], float] = time.time) -> None:
        self.signer = signer
        self.log = log
        self._clock = clock
        self.probe_timeout = 5.0

    def add_checkpoint(self, session: Session, body: bytes,
                       old_root_hint: bytes | None = None) -> WitnessResponse:
        """The HTTP handler's work: parse, then `submit`."""
        try:
            request = parse_add_checkpoint(body)
            origin = checkpoint_origin(request.note)
        except WitnessRequestError as exc:
            return WitnessResponse(400, f"{exc}\n", verdict=Verdict.BAD_REQUEST)
        return self.submit(session, origin, request, old_root_hint)

    def probe_body(self, session: Session, body: bytes) -> bytes | None:
        """`probe` for a raw add-checkpoint body (None when it does not even parse)."""
        try:
            request = parse_add_checkpoint(body)
            origin = checkpoint_origin(request.note)
        except WitnessRequestError:
            return None
        return self.probe(session, origin, request)

    def probe(self, session: Session, origin: str, request: AddCheckpoint) -> bytes | None:
        """Before the write transaction (network under no lock): the member's own root at the
        cosigned size, read from its tiles, when its proof fails from a power-of-two size.

        There the consistency proof carries no old root (RFC 9162 §2.1.4.2), so a forked
        member's proof names no second tree by itself. The tiles are unsigned, which does not
        matter: `decide` believes the root only if the member's proof ties it to the member's
        signed new checkpoint. None when not needed or not obtainable."""
        member = session.get(FederationMember, origin)
        if member is None or not member.url or member.witnessed_root is None:
            return None
        old = int(member.witnessed_size)
        if old == 0 or old & (old - 1) or request.old_size != old or not request.proof:
            return None
        try:
            checkpoint = parse_checkpoint(split_note(request.note)[0])
        except (NoteError, CheckpointError):
            return None
        if checkpoint.size <= old or ties_old_root(request.proof, old, checkpoint.size,
                                                   checkpoint.root,
                                                   bytes(member.witnessed_root)):
            return None
        try:
            return member_root_at(member.url, old, self.probe_timeout)
        except (FetchError, OSError, http.client.HTTPException, tlog.ProofError, ValueError):
            return None

    def submit(self, session: Session, origin: str, request: AddCheckpoint,
               old_root_hint: bytes | None = None) -> WitnessResponse:
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

        def cosigned_at(size: int) -> WitnessedHead | None:
            row = session.get(WitnessedCheckpoint, (origin, size))
            return WitnessedHead(size, bytes(row.root), row.note) if row is not None else None

        decision = decide(request, verifier, head, old_root_hint=old_root_hint,
                          cosigned_at=cosigned_at)
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
        cosigned = decision.earlier or head  # a rollback: the cosigned note of that size
        evidence = build_evidence(
            origin=member.origin, member_key=member.verifier_key, witness_key=self.signer.vkey,
            kind=SAME_SIZE if same_size else INCONSISTENT, cosigned=cosigned.note,
            conflicting=member_signed_note(request.note, verifier),
            proof=[] if same_size else request.proof,
            conflicting_old_root=decision.implied_old_root,
            detected_at=format_time(datetime.now(UTC)),
            rotations=[item["statement"] for item in json.loads(member.key_history or "[]")])
        session.add(WitnessEvidence(origin=member.origin, kind=evidence["kind"],
                                    evidence=json.dumps(evidence, indent=1)))
        member.alarm = (f"{evidence['kind']} detected {evidence['detected_at']}: "
                        f"{decision.detail}; cosigning stopped")
