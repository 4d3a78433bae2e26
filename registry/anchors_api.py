"""GET /api/v1/anchors: the anchors of checkpoints, each with its chain receipt and status."""

from __future__ import annotations

from flask import Blueprint, Response, request, url_for

from anchoring.anchor_store import STATUSES, list_anchors
from registry.http import int_arg, json_response, registry_state
from registry.problems import FieldError, bad_request

anchors_blueprint = Blueprint("anchors", __name__)
ANCHOR_ID_MAX = 2**31 - 1  # anchor ids are 32-bit (one anchor per epoch lasts millennia)


@anchors_blueprint.get("/api/v1/anchors")
def anchors() -> Response:
    limit = int_arg("limit", 100, minimum=1, maximum=1000) or 100
    before = int_arg("before", None, minimum=1, maximum=ANCHOR_ID_MAX)
    status = request.args.get("status")
    if status is not None and status not in STATUSES:
        raise bad_request("unknown status", errors=[FieldError(
            "must be one of " + ", ".join(STATUSES), name="status")])
    with registry_state().db.read() as session:
        items = list_anchors(session, limit=limit, before_id=before, status=status)
    next_page = None
    if len(items) == limit and items[-1].get("id"):
        next_page = url_for("anchors.anchors", limit=limit, before=items[-1]["id"],
                            status=status)
    return json_response({"items": items, "next": next_page})
