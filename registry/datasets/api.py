"""REST routes for datasets under /api/v1 (DESIGN.md's HTTP surface)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from flask import Blueprint, Response, request, url_for
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.auth.principal import require_signed_in
from registry.datasets import actions
from registry.datasets.listing import search_datasets, suggest_entries
from registry.datasets.models import IdempotencyRecord
from registry.http import (
    current_principal,
    int_arg,
    json_body,
    json_response,
    registry_state,
)
from registry.problems import FieldError, Problem, bad_request, conflict


def _version_response(recorded: actions.Recorded, status: int) -> Response:
    dataset, version = recorded.dataset, recorded.version
    body = actions.version_json(dataset, version, latest_visible=dataset.current_version)
    headers = {"ETag": actions.etag_for(version),
               "Location": url_for("api.dataset_version", ref=dataset.id,
                                   number=version.version)}
    return json_response(body, status, headers)


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 200 or not key.isprintable():
        raise bad_request("Idempotency-Key must be 1-200 printable characters",
                          errors=[FieldError("must be 1-200 printable characters",
                                             name="Idempotency-Key")])
    return key


def create_dataset() -> Response:
    principal = require_signed_in(current_principal())
    key = _idempotency_key()
    body = json_body()
    request_sha = hashlib.sha256(request.get_data(cache=True)).hexdigest()
    state = registry_state()
    try:
        with state.db.write() as session:
            if key is not None:
                previous = session.get(IdempotencyRecord, (principal.id, key))
                if previous is not None:
                    if previous.request_sha256 != request_sha:
                        raise Problem(422, "Idempotency-Key reused",
                                      "this Idempotency-Key was used with a different body",
                                      "idempotency-key-reused",
                                      [FieldError("was used with a different request body",
                                                  name="Idempotency-Key")])
                    replay = json_response(json.loads(previous.response_body),
                                           previous.status_code,
                                           {"Idempotency-Replayed": "true"})
                    if previous.location:
                        replay.headers["Location"] = previous.location
                    return replay
            recorded = actions.dataset_create(session, state.services, principal, body)
            response = _version_response(recorded, 201)
            if key is not None:
                session.add(IdempotencyRecord(
                    principal=principal.id, key=key, request_sha256=request_sha,
                    status_code=201, response_body=response.get_data(as_text=True),
                    location=response.headers.get("Location")))
        return response
    except IntegrityError:
        raise conflict("a concurrent request changed this dataset or used this "
                       "Idempotency-Key; retry") from None


def list_datasets() -> Response:
    principal = current_principal()
    state = registry_state()
    with state.db.read() as session:
        return json_response(search_datasets(session, state.search, principal, request.args))


def suggest() -> Response:
    principal = current_principal()
    state = registry_state()
    with state.db.read() as session:
        return json_response(suggest_entries(session, state.search, principal, request.args))


def show_dataset(ref: str) -> Response:
    principal = current_principal()
    with registry_state().db.read() as session:
        dataset, version = actions.dataset_show(session, principal, ref)
        latest = actions.visible_version_number(principal, dataset)
        body = actions.version_json(dataset, version, latest_visible=latest)
    return json_response(body, headers={"ETag": actions.etag_for(version)})


def _record_change(change: Callable[[Session, actions.Services], actions.Recorded]
                   ) -> Response:
    """Run one versioning action in one transaction; a lost race is a 409, not a 500."""
    state = registry_state()
    try:
        with state.db.write() as session:
            return _version_response(change(session, state.services), 200)
    except IntegrityError:
        raise conflict("another change to this dataset was recorded at the same time; "
                       "fetch it and retry") from None


def patch_dataset(ref: str) -> Response:
    principal = current_principal()
    body = json_body()
    if_match = request.headers.get("If-Match")
    return _record_change(lambda session, services: actions.dataset_patch(
        session, services, principal, ref, body, if_match))


def withdraw_dataset(ref: str) -> Response:
    principal = current_principal()
    note = request.args.get("reason")
    if request.get_data(cache=True):
        body = json_body()
        if not isinstance(body, dict) or set(body) - {"reason"} or not isinstance(
                body.get("reason", ""), str):
            raise bad_request("the body may only carry a string 'reason'",
                              errors=[FieldError("only 'reason' (a string) is allowed", "")])
        note = body.get("reason", note)
    if_match = request.headers.get("If-Match")
    return _record_change(lambda session, services: actions.dataset_withdraw(
        session, services, principal, ref, note, if_match))


def list_versions(ref: str) -> Response:
    principal = current_principal()
    limit = int_arg("limit", 100, minimum=1, maximum=1000) or 100
    after = int_arg("after", 0, minimum=0) or 0
    with registry_state().db.read() as session:
        dataset, versions = actions.dataset_versions(session, principal, ref)
        page = [v for v in versions if v.version > after][:limit]
        items = [{k: v for k, v in actions.version_json(dataset, ver).items()
                  if k != "metadata"} for ver in page]
    more = bool(page) and page[-1].version < versions[-1].version
    return json_response({"items": items, "next": (
        url_for("api.dataset_versions", ref=ref, after=page[-1].version, limit=limit)
        if more else None)})


def show_version(ref: str, number: int) -> Response:
    principal = current_principal()
    with registry_state().db.read() as session:
        dataset, version = actions.dataset_version(session, principal, ref, number)
        latest = actions.visible_version_number(principal, dataset)
        body = actions.version_json(dataset, version, latest_visible=latest)
    return json_response(body, headers={"ETag": actions.etag_for(version)})


def version_proof(ref: str, number: int) -> Response:
    from anchoring.tlog_proof import encode_tlog_proof
    from registry.datasets.proofs import version_proof_bundle

    principal = current_principal()
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "tlog-proof"):
        raise bad_request("format must be json or tlog-proof",
                          errors=[FieldError("must be json or tlog-proof", name="format")])
    state = registry_state()
    with state.db.read() as session:
        bundle = version_proof_bundle(state, session, principal, ref, number)
    if fmt == "tlog-proof":
        return Response(encode_tlog_proof(bundle.to_tlog_proof()), mimetype="text/plain")
    return json_response(bundle.to_json())


def register_dataset_routes(bp: Blueprint) -> None:
    bp.add_url_rule("/datasets", "datasets", list_datasets, methods=["GET"])
    bp.add_url_rule("/suggest", "suggest", suggest, methods=["GET"])
    bp.add_url_rule("/datasets", "dataset_create", create_dataset, methods=["POST"])
    bp.add_url_rule("/datasets/<ref>", "dataset", show_dataset, methods=["GET"])
    bp.add_url_rule("/datasets/<ref>", "dataset_patch", patch_dataset, methods=["PATCH"])
    bp.add_url_rule("/datasets/<ref>", "dataset_withdraw", withdraw_dataset, methods=["DELETE"])
    bp.add_url_rule("/datasets/<ref>/versions", "dataset_versions", list_versions)
    bp.add_url_rule("/datasets/<ref>/versions/<int:number>", "dataset_version", show_version)
    bp.add_url_rule("/datasets/<ref>/versions/<int:number>/proof", "dataset_version_proof",
                    version_proof)
