"""Where each version sits in the log: leaf index, the checkpoint covering it, its anchor.

Anchors live in tables another component creates; until that migration has run (or when no
anchor covers the leaf yet) the page says "not yet anchored" instead of failing — so the anchor
lookup runs in its own read session, and a missing table cannot poison the page's transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from registry.http import registry_state
from registry.state import RegistryState

_log = logging.getLogger("ndr.web")


@dataclass(frozen=True)
class Provenance:
    leaf_index: int
    checkpoint_size: int | None
    checkpoint_time: str | None
    anchor: dict[str, Any] | None


def provenance_of(session: Session, state: RegistryState, leaf_index: int | None,
                  ) -> Provenance | None:
    if leaf_index is None:
        return None
    checkpoint = state.log.checkpoint_at_least(session, leaf_index + 1)
    anchor = anchor_covering(state, leaf_index + 1) if checkpoint else None
    return Provenance(leaf_index=leaf_index,
                      checkpoint_size=checkpoint.size if checkpoint else None,
                      checkpoint_time=checkpoint.created_at.isoformat(timespec="seconds")
                      if checkpoint else None,
                      anchor=anchor)


def anchor_covering(state: RegistryState, size: int) -> dict[str, Any] | None:
    try:
        from anchoring.anchor_store import final_anchor_covering
        with state.db.read() as session:
            return final_anchor_covering(session, state.log.origin, size)
    except (ImportError, SQLAlchemyError) as exc:
        _log.debug("no anchor information: %s", exc.__class__.__name__)
        return None


def recent_anchors(state: RegistryState, limit: int = 20) -> list[dict[str, Any]] | None:
    """Newest anchors with their receipts; None when anchoring is not set up here."""
    try:
        from anchoring.anchor_store import list_anchors
        with state.db.read() as session:
            return list_anchors(session, limit=limit)
    except (ImportError, SQLAlchemyError) as exc:
        _log.debug("no anchor information: %s", exc.__class__.__name__)
        return None


def anchoring_kind() -> str:
    """What this registry anchors its checkpoints in: "local" (the signed journal on this
    server), "evm" or "chainmaker" — from the configuration, so the footer never claims a
    chain that is not there."""
    kind = str(registry_state().settings.anchor_backend or "local").strip().lower()
    return kind if kind in ("evm", "chainmaker") else "local"
