"""REST routes for datasets under /api/v1 (DESIGN.md's HTTP surface)."""

from __future__ import annotations

from flask import Blueprint, Response, request, url_for
from sqlalchemy.exc import IntegrityError

from registry.auth.principal import require_signed_in
from registry.datasets import actions, policy
from registry.datasets.listing import search_datasets, suggest_entries
from registry.datasets.sequencer_socket import IntegrityConflict, SequencerUnavailable
from registry.datasets.write_requests import CreateWrite, PatchWrite, WithdrawWrite, WriteRequest
from registry.http import (
    current_principal,
    int_arg,
    json_body,
    json_response,
    registry_state,
)
from registry.problems import FieldError, bad_request, conflict
from registry.state import RegistryState


def _respond(answer: actions.Answer) -> Response:
    headers = dict(answer.headers)
    if answer.replayed:
        headers["Idempotency-Replayed"] = "true"
    return json_response(answer.body, answer.status, headers)


def _write(write: WriteRequest, conflict_detail: str) -> Response:
    """Run one write: in the sequencer process that batches every worker's publishes, else
    in this process's next batch (the sequencer process is not running or not reachable),
    else in a transaction of its own when batching is off (NDR_PUBLISH_BATCH=0). A lost race
    on a unique constraint is a 409, not a 500."""
    try:
        return _respond(_record(registry_state(), write))
    except (IntegrityError, IntegrityConflict):
        raise conflict(conflict_detail) from None


def _record(state: RegistryState, write: WriteRequest) -> actions.Answer:
    if state.remote_sequencer is not None:
        try:
            return state.remote_sequencer.submit(write)
        except SequencerUnavailable:
            pass  # never sent: recorded here instead
    if state.sequencer is not None:
        return state.sequencer.submit(write.plan, write.slug_candidates())
    with state.db.write() as session:
        (answer,) = actions.record_plans(session, state.services, [write.plan(session, None)])
    return answer


def create_dataset() -> Response:
    principal = require_signed_in(current_principal())
    claim = actions.idempotency_claim(principal, request.headers.get("Idempotency-Key"),
                                      request.get_data(cache=True))
    prepared = actions.prepare_create(principal, json_body())  # checked before it is queued
    return _write(CreateWrite(prepared, claim, url_for("api.datasets")),
                  "a concurrent request changed this dataset or used this Idempotency-Key; "
                  "retry")


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
        latest = policy.shown_version_number(principal, dataset)
        body = actions.version_json(dataset, version, latest_visible=latest)
    return json_response(body, headers={"ETag": actions.etag_for(version)})


CHANGED_MEANWHILE = ("another change to this dataset was recorded at the same time; fetch it "
                     "and retry")


def patch_dataset(ref: str) -> Response:
    principal = current_principal()
    body = json_body()
    return _write(PatchWrite(principal, ref, body, request.headers.get("If-Match"),
                             url_for("api.datasets")), CHANGED_MEANWHILE)


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
    return _write(WithdrawWrite(principal, ref, note, request.headers.get("If-Match"),
                                url_for("api.datasets")), CHANGED_MEANWHILE)


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
        latest = policy.shown_version_number(principal, dataset)
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
        dataset, version = actions.dataset_version(session, principal, ref, number)
        if version.change.startswith(policy.FEDERATED):
            # A hub's copy of a member's entry: its proof is the federated chain (member
            # leaf -> member checkpoint -> cosignature -> hub leaf -> hub checkpoint).
            if fmt == "tlog-proof":
                raise bad_request("a federated version has no tlog-proof of this log; ask "
                                  "for format=json (ndr-federated-proof/v1)", errors=[
                                      FieldError("must be json for a federated version",
                                                 name="format")])
            from registry.federation.proofs import federated_bundle

            return json_response(federated_bundle(state, session, dataset.id, number))
        bundle = version_proof_bundle(state, session, dataset, version, ref=ref)
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
