"""Proof bundles for dataset versions: everything an auditor needs to check one version offline.

The checkpoint chosen is the smallest signed one that covers the leaf, so a version's bundle is
stable while the log grows (cacheable), and the anchors are those covering that checkpoint.
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy.orm import Session

from anchoring.bundle import ProofBundle, build_bundle
from anchoring.log_store import require_not_halted
from registry.datasets import actions
from registry.datasets.models import Dataset, DatasetVersion
from registry.problems import Problem, not_found
from registry.state import RegistryState


def anchors_for(state: RegistryState, session: Session, size: int) -> list[dict[str, Any]]:
    """Receipts of the first final anchor covering a checkpoint of `size`, each with the RFC
    9162 consistency proof from `size` to the anchored size, so an auditor can chain the
    bundle's checkpoint to the root the chain holds (empty until an anchor covers it)."""
    receipts = []
    for receipt in state.anchors_covering(session, size):
        anchored = int(receipt["size"])
        proof = state.log.consistency_proof(session, size, anchored) if anchored > size else []
        receipts.append({**receipt, "consistency": {
            "old_size": size, "new_size": anchored,
            "proof": [base64.b64encode(h).decode() for h in proof]}})
    return receipts


def version_proof_bundle(state: RegistryState, session: Session, dataset: Dataset,
                         version: DatasetVersion, *, ref: str) -> ProofBundle:
    """The bundle of a version the caller looked up (with its visibility check) as ``ref``."""
    number = version.version
    if version.leaf_index is None or version.log_entry is None:
        raise not_found(f"version {number} of {ref!r} is a draft; drafts are not logged")
    index, entry, dataset_id = version.leaf_index, version.log_entry, dataset.id
    metadata, receipt = actions.version_metadata(version), version.receipt
    salt = bytes.fromhex(version.metadata_salt) if version.metadata_salt else None
    require_not_halted(session)  # a halted log vouches for nothing: 503 with the alarm
    checkpoint = state.log.checkpoint_at_least(session, index + 1)
    if checkpoint is None:
        # Newer than the last checkpoint: sign one now (the same guarded signing the
        # checkpoint loop does) rather than make the auditor come back.
        with state.db.write() as writer:
            state.log.sign_checkpoint_if_grown(writer)
        session.rollback()  # a fresh snapshot that sees the new checkpoint
        require_not_halted(session)  # a halted log vouches for nothing: 503 with the alarm
    checkpoint = state.log.checkpoint_at_least(session, index + 1)
    if checkpoint is None:
        raise Problem(503, "Not yet checkpointed", "no signed checkpoint covers this version",
                      "not-yet-checkpointed", headers={"Retry-After": "1"})
    path = state.log.inclusion_proof(session, index, checkpoint.size)
    return build_bundle(
        origin=state.log.origin, dataset=dataset_id, version=number,
        entry=bytes(entry), metadata=metadata, metadata_salt=salt, index=index,
        tree_size=checkpoint.size, inclusion_path=path, checkpoint=checkpoint.note,
        receipt=receipt, anchors=anchors_for(state, session, checkpoint.size))
