"""The auditor's page: the signed checkpoint, the verifier key, anchors, a consistency check.

The consistency check asks the log for a proof between two sizes and checks it with the
auditor-side code (`anchoring.tlog.check_tree`). Where a signed checkpoint exists at a size its
signed root is used, and the page says so; otherwise the root is the log's own, which proves
less — an auditor who trusts nothing runs `ndr verify` or the tile-based tools instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import Blueprint, render_template, request
from sqlalchemy.orm import Session

from anchoring import tlog
from anchoring.log_store import LogRangeError
from registry.http import registry_state
from registry.web.provenance import recent_anchors

audit = Blueprint("audit", __name__)
# ASCII digits, at most 18 ("²".isdigit() is True but int("²") fails; int() of 5,000 digits too)
_SIZE = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True)
class ConsistencyResult:
    old: int
    new: int
    ok: bool
    message: str  # a code the page words in the reader's language
    path_length: int = 0
    signed_roots: tuple[bool, bool] = (False, False)
    signed_size: int = 0


@audit.get("/audit")
def log_page() -> str:
    state = registry_state()
    with state.db.read() as session:
        checkpoint = state.log.latest_checkpoint(session)
        result = _consistency(session, checkpoint.size if checkpoint else 0)
    return render_template("audit.html", checkpoint=checkpoint,
                           verifier_key=state.log.verifier_key, anchors=recent_anchors(state),
                           result=result, old=request.args.get("old", ""),
                           new=request.args.get("new", ""))


def _consistency(session: Session, latest_size: int) -> ConsistencyResult | None:
    old_raw, new_raw = request.args.get("old", ""), request.args.get("new", "")
    if not old_raw:
        return None
    if not _SIZE.fullmatch(old_raw) or (new_raw and not _SIZE.fullmatch(new_raw)):
        return ConsistencyResult(0, 0, False, "not-numbers")
    old, new = int(old_raw), int(new_raw) if new_raw else latest_size
    if not 0 < old <= new <= latest_size:
        return ConsistencyResult(old, new, False, "out-of-range", signed_size=latest_size)
    state = registry_state()
    try:
        proof = state.log.consistency_proof(session, old, new)
        old_signed = state.log.checkpoint_at(session, old)
        new_signed = state.log.checkpoint_at(session, new)
        old_root = old_signed.root if old_signed else state.log.root_at(session, old)
        new_root = new_signed.root if new_signed else state.log.root_at(session, new)
        tlog.check_tree(proof, new, new_root, old, old_root)
    except LogRangeError:
        return ConsistencyResult(old, new, False, "unavailable")
    except tlog.ProofError:
        return ConsistencyResult(old, new, False, "inconsistent")
    return ConsistencyResult(old, new, True, "consistent", len(proof),
                             (old_signed is not None, new_signed is not None))
