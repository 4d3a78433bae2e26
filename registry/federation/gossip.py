"""Two hubs that follow the same member compare what they cosigned, and catch a split view.

A member that shows hub A one history and hub B another passes each witness's checks alone.
Each hub therefore fetches its peers' latest cosigned checkpoint for every member it follows
(``GET /api/v1/federation/cosigned?origin=``) and holds it against its own:

* same size, different roots: both notes are member-signed - a proven fork;
* different sizes: the member must prove the smaller tree is a prefix of the larger one
  (a consistency proof from its own API). If the proof it gives leads from another root at
  the smaller size, it signed two trees of that size - a proven fork, with the same offline
  evidence as a witness refusal. If it gives no valid proof, the disagreement is recorded as
  the member's ``last_error`` (suspicious, not yet proven).

Peers: ``NDR_GOSSIP_PEERS``, base URLs of other hubs separated by spaces or commas.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from sqlalchemy import select

from anchoring import tlog
from anchoring.auditor.evidence import INCONSISTENT, SAME_SIZE, build_evidence
from anchoring.checkpoint import CheckpointError, format_time, open_checkpoint
from anchoring.note import NoteError, NoteVerifier
from registry.federation.models import FederationMember, MemberStatus, WitnessEvidence
from registry.federation.poller import FetchError, fetch
from registry.federation.witnessing import member_signed_note
from registry.state import RegistryState
from registry.timefmt import utc_now

log = logging.getLogger(__name__)


def parse_peers(text: str) -> list[str]:
    return [p.rstrip("/") for p in text.replace(",", " ").split() if p.strip()]


@dataclass(frozen=True)
class _Ours:
    origin: str
    key: str
    url: str | None
    note: str


def _member_proof(url: str, old: int, new: int) -> tuple[list[bytes], bytes]:
    raw = fetch(f"{url.rstrip('/')}/api/v1/log/proof/consistency?old={old}&new={new}")
    try:
        data = json.loads(raw)
        proof = [base64.b64decode(h, validate=True) for h in data["consistency_path"]]
        return proof, base64.b64decode(data["old_root"], validate=True)
    except (ValueError, KeyError, TypeError) as exc:
        raise FetchError(f"malformed consistency proof: {exc}") from None


def compare(state: RegistryState, peer: str, witness_key: str) -> dict[str, str]:
    """Compare every member we cosigned with what `peer` cosigned; record proven forks."""
    with state.db.read() as session:
        ours = [_Ours(m.origin, m.verifier_key, m.url, m.witnessed_note)
                for m in session.scalars(select(FederationMember).where(
                    FederationMember.status == MemberStatus.ACTIVE,
                    FederationMember.witnessed_note.is_not(None)))]
    outcomes: dict[str, str] = {}
    for member in ours:
        try:
            raw = fetch(f"{peer}/api/v1/federation/cosigned?origin={quote(member.origin)}")
            theirs = str(json.loads(raw)["note"])
        except FetchError as exc:
            outcomes[member.origin] = f"peer has nothing: {exc}"
            continue
        except (ValueError, KeyError, TypeError) as exc:
            outcomes[member.origin] = f"peer answered garbage: {exc}"
            continue
        outcomes[member.origin] = _compare_one(state, member, theirs, peer, witness_key)
    return outcomes


def _compare_one(state: RegistryState, member: _Ours, theirs: str, peer: str,
                 witness_key: str) -> str:
    verifier = NoteVerifier.from_vkey(member.key)
    try:
        mine = open_checkpoint(member.note, verifier, member.origin)
        other = open_checkpoint(theirs, verifier, member.origin)
    except (NoteError, CheckpointError) as exc:
        return f"peer's checkpoint is not signed by the member: {exc}"
    if mine.size == other.size:
        if mine.root == other.root:
            return f"agree at size {mine.size}"
        _record(state, member, SAME_SIZE, member.note, theirs, [], None, witness_key, peer)
        return f"SPLIT VIEW at size {mine.size}"
    small, large = (mine, other) if mine.size < other.size else (other, mine)
    small_note, large_note = (member.note, theirs) if small is mine else (theirs, member.note)
    if small.size == 0 or not member.url:
        return f"sizes {mine.size} and {other.size}; no member URL to check consistency"
    try:
        proof, old_root = _member_proof(member.url, small.size, large.size)
        tlog.check_tree(proof, large.size, large.root, small.size, old_root)
    except (FetchError, tlog.ProofError) as exc:
        _suspect(state, member.origin, f"peer {peer} cosigned size {other.size}; the member "
                                        f"cannot show it consistent with size {mine.size}: {exc}")
        return f"unproven disagreement: {exc}"
    if old_root != small.root:
        _record(state, member, INCONSISTENT, small_note, large_note, proof, old_root,
                witness_key, peer)
        return f"SPLIT VIEW: two trees of size {small.size}"
    return f"consistent ({mine.size} vs {other.size})"


def _record(state: RegistryState, member: _Ours, kind: str, cosigned: str, conflicting: str,
            proof: list[bytes], old_root: bytes | None, witness_key: str, peer: str) -> None:
    verifier = NoteVerifier.from_vkey(member.key)
    evidence = build_evidence(
        origin=member.origin, member_key=member.key, witness_key=witness_key, kind=kind,
        cosigned=cosigned, conflicting=member_signed_note(conflicting, verifier), proof=proof,
        conflicting_old_root=old_root, detected_at=format_time(datetime.now(UTC)))
    evidence["gossip_peer"] = peer
    with state.db.write() as session:
        row = session.get(FederationMember, member.origin)
        if row is None or row.alarm:
            return
        session.add(WitnessEvidence(origin=member.origin, kind=kind,
                                    evidence=json.dumps(evidence, indent=1)))
        row.alarm = f"split view found by gossip with {peer} ({kind}); cosigning stopped"


def _suspect(state: RegistryState, origin: str, message: str) -> None:
    with state.db.write() as session:
        row = session.get(FederationMember, origin)
        if row is not None:
            row.last_error = f"{utc_now().isoformat()}Z {message}"[:2000]


class GossipLoop:
    def __init__(self, state: RegistryState, peers: list[str], witness_key: str,
                 interval: float = 30.0) -> None:
        self.state, self.peers, self.witness_key = state, peers, witness_key
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def run_once(self) -> dict[str, dict[str, str]]:
        return {peer: compare(self.state, peer, self.witness_key) for peer in self.peers}

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                self.last_error = None
            except Exception as exc:
                self.last_error = str(exc)
                log.exception("gossip failed")
            self._stop.wait(self._interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ndr-gossip", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

