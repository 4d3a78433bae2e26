"""HTTP surface of federation: the C2SP tlog-witness endpoint and the hub's records.

* ``POST /witness/add-checkpoint`` - tlog-witness (text in, cosignature line out)
* ``GET /witness/key`` - the witness's cosignature/v1 verifier key
* ``GET /api/v1/federation/members`` - the trust configuration and each member's head
* ``GET /api/v1/federation/cosigned?origin=`` - the newest member checkpoint the hub cosigned
  (what a poll-mode member or another hub gossiping with this one fetches)
* ``GET /api/v1/federation/evidence[?origin=]`` · ``/evidence/<id>`` - fork evidence
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy import select

from registry.federation.models import FederationMember, WitnessedCheckpoint, WitnessEvidence
from registry.federation.runtime import federation
from registry.http import json_response, registry_state
from registry.problems import FieldError, bad_request, not_found
from registry.timefmt import rfc3339

federation_blueprint = Blueprint("federation", __name__)


@federation_blueprint.post("/witness/add-checkpoint")
def add_checkpoint() -> Response:
    state = registry_state()
    hub = federation(state).witness
    body = request.get_data(cache=False)
    with state.db.read() as session:  # any network probe happens here, under no write lock
        hint = hub.probe_body(session, body)
    with state.db.write() as session:
        result = hub.add_checkpoint(session, body, hint)
    response = Response(result.body, status=result.status, content_type=result.content_type)
    response.headers["Cache-Control"] = "no-store"
    return response


@federation_blueprint.post("/witness/key-rotation")
def witness_key_rotation() -> Response:
    """Body: an ``ndr.key-rotation/v1`` statement (text), signed by the member's current key:
    where a member's submitter sends its rotations, next to ``add-checkpoint``. Idempotent."""
    from registry.federation.trust import rotate_member_key, statement_origin

    raw = request.get_data(cache=False)
    if len(raw) > 64 * 1024:
        raise bad_request("the statement is too large",
                          errors=[FieldError("at most 64 KiB", "/statement")])
    try:
        statement = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("the statement is not UTF-8",
                          errors=[FieldError("must be UTF-8 text", "/statement")]) from None
    state = registry_state()
    with state.db.write() as session:
        member = rotate_member_key(session, statement_origin(statement), statement)
        data = member_json(member)
    return json_response(data)


@federation_blueprint.get("/witness/key")
def witness_key() -> Response:
    return Response(federation(registry_state()).witness.signer.vkey + "\n",
                    content_type="text/plain; charset=utf-8")


def member_json(member: FederationMember) -> dict[str, Any]:
    return {"origin": member.origin, "verifier_key": member.verifier_key, "url": member.url,
            "mode": member.mode, "poll_interval": member.poll_interval,
            "status": member.status, "witnessed_size": member.witnessed_size,
            "witnessed_at": rfc3339(member.witnessed_at) if member.witnessed_at else None,
            "last_seen_at": rfc3339(member.last_seen_at) if member.last_seen_at else None,
            "alarm": member.alarm, "last_error": member.last_error,
            "added_at": rfc3339(member.added_at),
            # Every rotation the hub followed (statements signed by each old key), so an
            # auditor holding an earlier key of the member can check older checkpoints.
            "key_history": [item.get("statement") for item in
                            json.loads(member.key_history or "[]")],
            "removed_at": rfc3339(member.removed_at) if member.removed_at else None}


@federation_blueprint.get("/api/v1/federation/members")
def members() -> Response:
    state = registry_state()
    with state.db.read() as session:
        rows = session.scalars(select(FederationMember).order_by(FederationMember.origin))
        data = [member_json(m) for m in rows]
    return json_response({"witness_key": federation(state).witness.signer.vkey,
                          "members": data})


def _origin_arg() -> str:
    origin = request.args.get("origin", "")
    if not origin:
        raise bad_request("origin is required", errors=[FieldError("is required",
                                                                   name="origin")])
    return origin


@federation_blueprint.get("/api/v1/federation/cosigned")
def cosigned() -> Response:
    origin = _origin_arg()
    state = registry_state()
    with state.db.read() as session:
        row = session.scalar(select(WitnessedCheckpoint).where(
            WitnessedCheckpoint.origin == origin).order_by(WitnessedCheckpoint.size.desc())
            .limit(1))
    if row is None:
        raise not_found(f"no cosigned checkpoint for {origin!r}")
    return json_response({"origin": row.origin, "size": row.size, "note": row.note,
                          "cosignature": row.cosignature, "timestamp": row.timestamp,
                          "hub_leaf_index": row.hub_leaf_index})


@federation_blueprint.get("/api/v1/federation/evidence")
def evidence_list() -> Response:
    state = registry_state()
    query = select(WitnessEvidence).order_by(WitnessEvidence.id)
    if request.args.get("origin"):
        query = query.where(WitnessEvidence.origin == request.args["origin"])
    with state.db.read() as session:
        rows = [{"id": e.id, "origin": e.origin, "kind": e.kind,
                 "created_at": rfc3339(e.created_at), "evidence": json.loads(e.evidence)}
                for e in session.scalars(query)]
    return json_response({"evidence": rows})


@federation_blueprint.get("/api/v1/federation/evidence/<int:evidence_id>")
def evidence_one(evidence_id: int) -> Response:
    state = registry_state()
    with state.db.read() as session:
        row = session.get(WitnessEvidence, evidence_id) if evidence_id < 2**31 else None
    if row is None:
        raise not_found(f"no evidence {evidence_id}")
    return Response(row.evidence, content_type="application/json")


@federation_blueprint.get("/api/v1/federation/datasets/<ref>/versions/<int:number>/proof")
def federated_proof(ref: str, number: int) -> Response:
    from registry.federation.proofs import federated_bundle

    state = registry_state()
    with state.db.read() as session:
        bundle = federated_bundle(state, session, ref, number)
    return json_response(bundle)


@federation_blueprint.get("/api/v1/federation/refusals")
def refusals() -> Response:
    """The mirror report: every member record refused, and why."""
    from registry.federation.models import MirrorRefusal

    state = registry_state()
    query = select(MirrorRefusal).order_by(MirrorRefusal.id)
    if request.args.get("origin"):
        query = query.where(MirrorRefusal.origin == request.args["origin"])
    with state.db.read() as session:
        rows = [{"origin": r.origin, "leaf_index": r.leaf_index, "reason": r.reason,
                 "created_at": rfc3339(r.created_at)} for r in session.scalars(query.limit(1000))]
    return json_response({"refusals": rows})


@federation_blueprint.post("/api/v1/federation/members/rotate")
def rotate_key() -> Response:
    """Body: ``{"origin": ..., "statement": <ndr.key-rotation/v1 note by the current key>}``.
    No token needed: the statement authenticates itself."""
    from registry.federation.trust import rotate_member_key
    from registry.http import json_body

    body = json_body()
    if not isinstance(body, dict) or not isinstance(body.get("origin"), str) \
            or not isinstance(body.get("statement"), str):
        raise bad_request("send origin and statement as strings",
                          errors=[FieldError("is required", "/origin"),
                                  FieldError("is required", "/statement")])
    state = registry_state()
    with state.db.write() as session:
        member = rotate_member_key(session, body["origin"], body["statement"])
        data = member_json(member)
    return json_response(data)


@federation_blueprint.get("/api/v1/federation/harvest-sources")
def harvest_sources() -> Response:
    """Log-less sources and their last reports; everything from them is labelled
    "harvested, provenance not verified"."""
    from registry.federation.harvest import source_json
    from registry.federation.models import HarvestSource

    state = registry_state()
    with state.db.read() as session:
        rows = [source_json(s) for s in session.scalars(select(HarvestSource).order_by(
            HarvestSource.id))]
    return json_response({"sources": rows})
