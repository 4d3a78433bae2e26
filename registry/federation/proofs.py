"""The proof chain of a federated (mirrored) dataset version, ``ndr-federated-proof/v1``:
member inclusion proof -> member checkpoint -> hub cosignature -> the hub's member.checkpoint
leaf -> hub checkpoint -> anchors. See anchoring/auditor/federated.py for each check, and
registry/web/static/verify.js for the same checks in a browser.

Everything here is raw material (entries, notes, paths, keys), never a verdict: a verifier
recomputes every hash itself. The member's key is the one the hub's trust configuration
records (``GET /api/v1/federation/members``): its current key, or the earlier key of its
rotation history that signed this checkpoint, named by the note's own signature line.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from anchoring.auditor.federated import FORMAT
from anchoring.note import NoteError, NoteVerifier, split_note
from registry.datasets.actions import find_dataset, version_metadata
from registry.datasets.models import DatasetVersion
from registry.datasets.policy import RESTRICTED_NOTE, is_restricted
from registry.datasets.proofs import anchors_for
from registry.federation.models import FederatedEntry, FederationMember, WitnessedCheckpoint
from registry.federation.runtime import federation
from registry.problems import Problem, not_found
from registry.state import RegistryState


def federated_bundle(state: RegistryState, session: Session, ref: str, number: int
                     ) -> dict[str, Any]:
    dataset = find_dataset(session, ref) if 1 <= number < 2**31 else None
    provenance = session.get(FederatedEntry, (dataset.id, number)) if dataset else None
    version = session.get(DatasetVersion, (dataset.id, number)) if dataset else None
    if dataset is None or provenance is None or version is None:
        raise not_found(f"no federated version {number} of {ref!r}")
    # A dataset its publisher restricted keeps its provenance (the member's leaf, every proof)
    # but no longer shows its metadata, as `policy` says.
    restricted = is_restricted(dataset, version)
    witnessed = session.get(WitnessedCheckpoint, (provenance.origin,
                                                  provenance.checkpoint_size))
    member = session.get(FederationMember, provenance.origin)
    if witnessed is None or witnessed.hub_leaf_index is None or member is None:
        raise not_found("the member checkpoint this version was verified against is missing")
    index = int(witnessed.hub_leaf_index)
    checkpoint = state.log.checkpoint_at_least(session, index + 1)
    if checkpoint is None:
        raise Problem(503, "Not yet checkpointed", "no hub checkpoint covers this member "
                      "checkpoint yet", "not-yet-checkpointed", headers={"Retry-After": "1"})
    path = state.log.inclusion_proof(session, index, checkpoint.size)
    b64 = [base64.b64encode(h).decode() for h in path]
    return {
        "format": FORMAT, "dataset": dataset.id, "version": number,
        "member": {"origin": provenance.origin,
                   "verifier_key": signing_key(member, witnessed.note),
                   "current_key": member.verifier_key,
                   "trust_configuration": "/api/v1/federation/members",
                   "url": member.url,
                   "dataset": provenance.member_dataset_id, "entry": provenance.entry,
                   "metadata": None if restricted else version_metadata(version),
                   "metadata_sha256": version.metadata_sha256, "index": provenance.leaf_index,
                   "tree_size": provenance.checkpoint_size,
                   "inclusion_path": json.loads(provenance.inclusion_path),
                   "checkpoint": witnessed.note},
        "restricted": RESTRICTED_NOTE if restricted else None,
        "witness_key": federation(state).witness.signer.vkey,
        "hub": {"origin": state.log.origin, "verifier_key": state.log.verifier_key,
                "entry": state.log.entry(session, index).decode(),
                "index": index, "tree_size": checkpoint.size, "inclusion_path": b64,
                "checkpoint": checkpoint.note,
                "anchors": anchors_for(state, session, checkpoint.size)},
    }


def signing_key(member: FederationMember, note: str) -> str:
    """The member key of the hub's trust configuration (current, or earlier in its rotation
    history) that a signature line of `note` names; the current key when none does (the
    verifier then reports the missing signature)."""
    keys = [member.verifier_key] + [str(item.get("old_key", "")) for item in
                                    reversed(json.loads(member.key_history or "[]"))]
    try:
        _, signatures = split_note(note)
    except NoteError:
        return member.verifier_key
    named = {(s.name, s.key_id) for s in signatures}
    for vkey in keys:
        try:
            key = NoteVerifier.from_vkey(vkey)
        except (NoteError, ValueError):
            continue
        if (key.name, key.key_id) in named:
            return vkey
    return member.verifier_key


def federated_versions(session: Session, dataset_id: str) -> dict[int, dict[str, Any]]:
    """For the dataset page: where each mirrored version of `dataset_id` sits in its member's
    log, and the member's key as the hub's trust configuration records it (shown beside the
    "Verify in your browser" button, so a reader can compare it with the member's own)."""
    rows = session.scalars(select(FederatedEntry).where(FederatedEntry.dataset_id == dataset_id))
    members: dict[str, FederationMember | None] = {}
    keys: dict[tuple[str, int], str | None] = {}
    out: dict[int, dict[str, Any]] = {}
    for row in rows:
        if row.origin not in members:
            members[row.origin] = session.get(FederationMember, row.origin)
        member = members[row.origin]
        at = (row.origin, row.checkpoint_size)
        if at not in keys:  # the key the version's bundle names (see federated_bundle)
            witnessed = session.get(WitnessedCheckpoint, at)
            keys[at] = None if member is None else signing_key(
                member, witnessed.note) if witnessed else member.verifier_key
        out[row.version] = {
            "origin": row.origin, "leaf_index": row.leaf_index,
            "checkpoint_size": row.checkpoint_size, "verifier_key": keys[at],
            "key_url": f"{member.url.rstrip('/')}/log/key" if member and member.url else None}
    return out
