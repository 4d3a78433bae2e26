"""The proof chain of a federated (mirrored) dataset version, ``ndr-federated-proof/v1``:
member inclusion proof -> member checkpoint -> hub cosignature -> the hub's member.checkpoint
leaf -> hub checkpoint -> anchors. See anchoring/auditor/federated.py for each check."""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy.orm import Session

from anchoring.auditor.federated import FORMAT
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
        "member": {"origin": provenance.origin, "verifier_key": member.verifier_key,
                   "dataset": provenance.member_dataset_id, "entry": provenance.entry,
                   "metadata": None if restricted else version_metadata(version),
                   "metadata_sha256": version.metadata_sha256, "index": provenance.leaf_index,
                   "tree_size": provenance.checkpoint_size,
                   "inclusion_path": json.loads(provenance.inclusion_path),
                   "checkpoint": witnessed.note},
        "restricted": RESTRICTED_NOTE if restricted else None,
        "witness_key": federation(state).witness.signer.vkey,
        "hub": {"origin": state.log.origin, "entry": state.log.entry(session, index).decode(),
                "index": index, "tree_size": checkpoint.size, "inclusion_path": b64,
                "checkpoint": checkpoint.note,
                "anchors": anchors_for(state, session, checkpoint.size)},
    }
