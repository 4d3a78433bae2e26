"""HTTP surface of the log: C2SP tlog-tiles under /log/, JSON proofs under /api/v1/log/.

Tiles are served only up to the latest *signed* checkpoint: a client never sees a hash the
log has not committed to, and every tile it can fetch is immutable, so full tiles are
cacheable forever by any CDN in front of the registry.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from anchoring import tlog
from anchoring.log_store import LogError, LogRangeError
from registry.federation.member import cosigned_note

log_blueprint = Blueprint("transparency_log", __name__)

IMMUTABLE = "public, max-age=31536000, immutable"
PARTIAL_TILE_CACHE = "public, max-age=3600"
CHECKPOINT_CACHE = "public, max-age=2"
_MAX_INDEX = (1 << 63) - 1


def _state() -> Any:
    return current_app.extensions["ndr"]


def _problem(status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None
             ) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status,
                            "detail": detail}
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    response.content_type = "application/problem+json"
    return response


def _bad_parameter(name: str, detail: str) -> Response:
    return _problem(400, "Invalid parameter", detail, [{"name": name, "detail": detail}])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _text(body: str, cache: str, status: int = 200) -> Response:
    response = Response(body, status=status, content_type="text/plain; charset=utf-8")
    response.headers["Cache-Control"] = cache
    return response


def _not_found(detail: str) -> Response:
    response = _problem(404, "Not Found", detail)
    response.headers["Cache-Control"] = "no-store"
    return response


@log_blueprint.get("/log/checkpoint")
def checkpoint() -> Response:
    state = _state()
    with state.db.read() as session:
        latest = state.log.latest_checkpoint(session)
        # Witnesses' cosignatures travel as extra signature lines of the note.
        note = cosigned_note(session, latest) if latest is not None else ""
    if latest is None:
        return _not_found("the log has not signed a checkpoint yet")
    return _text(note, CHECKPOINT_CACHE)


@log_blueprint.get("/log/key")
def verifier_key() -> Response:
    """The key that signs now (the newest of the chain, even in a process that has not
    re-read its key file since a rotation)."""
    state = _state()
    with state.db.read() as session:
        try:
            newest = state.log.key_chain(session)[-1].vkey
        except LogError:  # a broken rotation record: the self-audit raises the alarm
            newest = state.log.verifier_key
    return _text(newest + "\n", "public, max-age=300")


@log_blueprint.get("/log/key-rotations")
def key_rotations() -> Response:
    """Every rotation of the log's key, oldest first: the statements signed by each old key
    and the leaves that record them (see anchoring/auditor/key_rotation.py)."""
    state = _state()
    with state.db.read() as session:
        rows = state.log.rotations(session)
        body = {"origin": state.log.origin,
                "rotations": [{"statement": r.statement, "old_key": r.old_key,
                               "new_key": r.new_key, "leaf_index": r.leaf_index}
                              for r in rows]}
    response = Response(json.dumps(body, ensure_ascii=False), content_type="application/json")
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


@log_blueprint.get("/log/tile/<path:path>")
def tile(path: str) -> Response:
    try:
        wanted = tlog.parse_tile_path("tile/" + path)
    except ValueError as exc:
        return _not_found(str(exc))
    state = _state()
    with state.db.read() as session:
        latest = state.log.latest_checkpoint(session)
        if latest is None or wanted.records_needed() > latest.size:
            return _not_found("tile is beyond the latest checkpoint")
        if wanted.is_entries:
            data = state.log.entries_tile(session, wanted.n, wanted.width)
        else:
            data = state.log.hash_tile(session, wanted.level, wanted.n, wanted.width)
    response = Response(data, content_type="application/octet-stream")
    response.headers["Cache-Control"] = PARTIAL_TILE_CACHE if wanted.is_partial else IMMUTABLE
    return response


def _int_arg(name: str, *, default: int | None = None) -> int | Response:
    raw = request.args.get(name)
    if raw is None or raw == "":
        if default is not None:
            return default
        return _bad_parameter(name, f"{name} is required")
    if not raw.isascii() or not raw.isdigit() or (len(raw) > 1 and raw[0] == "0"):
        return _bad_parameter(name, f"{name} must be a non-negative decimal integer")
    value = int(raw)
    if value > _MAX_INDEX:
        return _bad_parameter(name, f"{name} is too large")
    return value


def _latest_size(session: Any) -> int:
    latest = _state().log.latest_checkpoint(session)
    return 0 if latest is None else latest.size


@log_blueprint.get("/api/v1/log/proof/inclusion")
def inclusion_proof() -> Response:
    state = _state()
    index = _int_arg("index")
    if isinstance(index, Response):
        return index
    with state.db.read() as session:
        size = _int_arg("size", default=_latest_size(session))
        if isinstance(size, Response):
            return size
        if size == 0:
            return _bad_parameter("size", "size must be at least 1")
        if index >= size:
            return _bad_parameter("index", f"index must be below size ({size})")
        try:
            proof = state.log.inclusion_proof(session, index, size)
            root = state.log.root_at(session, size)
            leaf = tlog.hash_leaf(state.log.entry(session, index))
        except LogRangeError as exc:
            return _bad_parameter(exc.parameter, str(exc))
    return jsonify({"index": index, "tree_size": size, "leaf_hash": _b64(leaf),
                    "inclusion_path": [_b64(h) for h in proof], "root_hash": _b64(root)})


@log_blueprint.get("/api/v1/log/proof/consistency")
def consistency_proof() -> Response:
    state = _state()
    old = _int_arg("old")
    if isinstance(old, Response):
        return old
    if old == 0:
        return _bad_parameter("old", "old must be at least 1")
    with state.db.read() as session:
        new = _int_arg("new", default=_latest_size(session))
        if isinstance(new, Response):
            return new
        if old > new:
            return _bad_parameter("old", f"old must not exceed new ({new})")
        try:
            proof = state.log.consistency_proof(session, old, new)
            old_root = state.log.root_at(session, old)
            new_root = state.log.root_at(session, new)
        except LogRangeError as exc:
            return _bad_parameter(exc.parameter, str(exc))
    return jsonify({"old": old, "new": new, "consistency_path": [_b64(h) for h in proof],
                    "old_root": _b64(old_root), "new_root": _b64(new_root)})
