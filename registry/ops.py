"""Operations endpoints: liveness, readiness and Prometheus metrics for the 3 a.m. operator."""

from __future__ import annotations

import time

from flask import Blueprint, Response
from sqlalchemy import func, select, text

from anchoring.log_store import open_alarms
from anchoring.self_audit import load_progress
from registry.datasets.models import Dataset, State
from registry.federation.health import federation_alarms, federation_metrics
from registry.http import json_response, registry_state
from registry.state import RegistryState
from registry.timefmt import rfc3339

ops_blueprint = Blueprint("ops", __name__)
_STARTED = time.time()


@ops_blueprint.get("/healthz")
def healthz() -> Response:
    return json_response({"status": "ok"})


@ops_blueprint.get("/readyz")
def readyz() -> Response:
    """Ready when the database answers, the checkpoint signer is not failing and the
    self-audit has no open alarm (an alarm names the leaf: what the operator restores)."""
    state = registry_state()
    checks: dict[str, str] = {}
    alarms: list[dict[str, object]] = []
    federation: dict[str, str] = {}
    try:
        with state.db.read() as session:
            session.execute(text("SELECT 1"))
            size = state.log.size(session)
            latest = state.log.latest_checkpoint(session)
            alarms = [{"kind": a.kind, "leaf_index": a.leaf_index, "detail": a.detail,
                       "detected": rfc3339(a.detected_at)} for a in open_alarms(session, 20)]
            federation = federation_alarms(session)
        checks["database"] = "ok"
        lag = size - (latest.size if latest else 0)
        checks["checkpoint"] = "ok" if lag == 0 or state.background else f"{lag} leaves unsigned"
        where = "" if not alarms or alarms[0]["leaf_index"] is None else \
            f" at leaf {alarms[0]['leaf_index']}"
        checks["self_audit"] = "ok" if not alarms else (
            f"{alarms[0]['kind']}{where}; writes and checkpoints are halted until "
            "`ndr log audit --acknowledge`")
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    for loop in state.background:
        error = getattr(loop, "last_error", None)
        checks[type(loop).__name__] = "ok" if error is None else f"error: {error}"
    ready = all(v == "ok" for v in checks.values())
    body: dict[str, object] = {"status": "ready" if ready else "not ready", "checks": checks,
                               "federation_alarms": federation}
    if state.search.name == "elasticsearch":
        # informational: a search index behind the catalogue does not stop this process from
        # serving (writes go to the outbox), so it does not change readiness
        body["search_index"] = _search_index_status(state)
    if alarms:
        body["alarms"] = alarms
    return json_response(body, 200 if ready else 503)


def _search_index_status(state: RegistryState) -> dict[str, object]:
    """How far the search cluster's index is behind the catalogue, and why if it is stuck."""
    from search.elasticsearch_backend import outbox_lag

    with state.db.read() as session:
        lag = outbox_lag(session, state.search.consumer)
    health = state.search.cluster_health()
    status = state.search.outbox_status
    error = health.error or status.last_error
    return {
        "state": "current" if lag.rows == 0 else "behind",
        "behind_by": lag.rows, "oldest_seconds": round(lag.oldest_seconds, 1),
        "engine": state.search.flavour, "cluster": health.status, "nodes": health.nodes,
        "error": error,
    }


def _label(value: str) -> str:
    """A Prometheus label value: escaped, one line, bounded."""
    text = " ".join(value.split())[:300]
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _search_metrics(state: RegistryState) -> list[str]:
    from search.elasticsearch_backend import outbox_lag

    with state.db.read() as session:
        lag = outbox_lag(session, state.search.consumer)
    health = state.search.cluster_health()
    status = state.search.outbox_status
    engine = state.search.flavour
    up = 0 if health.error else 1
    lines = [
        "# HELP ndr_search_outbox_rows Catalogue changes not yet in the search cluster.",
        "# TYPE ndr_search_outbox_rows gauge", f"ndr_search_outbox_rows {lag.rows}",
        "# HELP ndr_search_outbox_oldest_seconds Age of the oldest change not yet indexed.",
        "# TYPE ndr_search_outbox_oldest_seconds gauge",
        f"ndr_search_outbox_oldest_seconds {lag.oldest_seconds:.1f}",
        "# HELP ndr_search_cluster_up Whether the search cluster answers (error: its message).",
        "# TYPE ndr_search_cluster_up gauge",
        f'ndr_search_cluster_up{{engine="{engine}",status="{health.status}",'
        f'error="{_label(health.error or "")}"}} {up}',
        "# HELP ndr_search_cluster_nodes Nodes in the search cluster.",
        "# TYPE ndr_search_cluster_nodes gauge", f"ndr_search_cluster_nodes {health.nodes}",
        "# HELP ndr_search_outbox_settled_total Outbox rows this process shipped.",
        "# TYPE ndr_search_outbox_settled_total counter",
        f"ndr_search_outbox_settled_total {status.settled_total}",
        "# HELP ndr_search_outbox_refused_total Outbox rows the engine refused (kept, retried).",
        "# TYPE ndr_search_outbox_refused_total counter",
        f"ndr_search_outbox_refused_total {status.failed_total}",
        "# HELP ndr_search_outbox_error The engine's message from the last failed drain.",
        "# TYPE ndr_search_outbox_error gauge",
        f'ndr_search_outbox_error{{message="{_label(status.last_error or "")}"}} '
        f"{1 if status.last_error else 0}",
    ]
    return lines


@ops_blueprint.get("/metrics")
def metrics() -> Response:
    state = registry_state()
    with state.db.read() as session:
        size = state.log.size(session)
        latest = state.log.latest_checkpoint(session)
        published = session.scalar(select(func.count()).select_from(Dataset).where(
            Dataset.released_state == State.PUBLISHED)) or 0
        total = session.scalar(select(func.count()).select_from(Dataset)) or 0
        alarms = len(open_alarms(session, 10_000))
        progress = load_progress(session)
        federation = federation_metrics(session)
    lines = [
        "# HELP ndr_self_audit_alarms Open (unacknowledged) self-audit alarms; writes halt.",
        "# TYPE ndr_self_audit_alarms gauge", f"ndr_self_audit_alarms {alarms}",
        "# HELP ndr_self_audit_position Next leaf the self-audit sweep will verify.",
        "# TYPE ndr_self_audit_position gauge",
        f"ndr_self_audit_position {progress.next_leaf}",
        "# HELP ndr_self_audit_sweeps_total Full sweeps of the log the self-audit completed.",
        "# TYPE ndr_self_audit_sweeps_total counter",
        f"ndr_self_audit_sweeps_total {progress.sweeps}",
        "# HELP ndr_log_size Leaves in the transparency log.",
        "# TYPE ndr_log_size gauge", f"ndr_log_size {size}",
        "# HELP ndr_checkpoint_size Tree size of the newest signed checkpoint.",
        "# TYPE ndr_checkpoint_size gauge", f"ndr_checkpoint_size {latest.size if latest else 0}",
        "# HELP ndr_datasets Datasets by whether their released version is published.",
        "# TYPE ndr_datasets gauge", f'ndr_datasets{{state="published"}} {published}',
        f'ndr_datasets{{state="any"}} {total}',
        "# HELP ndr_uptime_seconds Seconds since this process started.",
        "# TYPE ndr_uptime_seconds gauge", f"ndr_uptime_seconds {time.time() - _STARTED:.0f}",
        *federation,
    ]
    if state.sequencer is not None:  # per process: a scrape sees the worker that answered
        lines += [
            "# HELP ndr_publish_batches_total Publish batches this process committed.",
            "# TYPE ndr_publish_batches_total counter",
            f"ndr_publish_batches_total {state.sequencer.batches}",
            "# HELP ndr_publish_batched_writes_total Writes recorded in those batches.",
            "# TYPE ndr_publish_batched_writes_total counter",
            f"ndr_publish_batched_writes_total {state.sequencer.items}",
        ]
    if state.remote_sequencer is not None:
        lines += [
            "# HELP ndr_publish_sequencer_writes_total Writes this worker sent to the "
            "sequencer process, by outcome (unavailable: recorded here instead).",
            "# TYPE ndr_publish_sequencer_writes_total counter",
            *(f'ndr_publish_sequencer_writes_total{{outcome="{outcome}"}} {count}'
              for outcome, count in sorted(state.remote_sequencer.outcomes.items())),
        ]
    if state.search.name == "elasticsearch":
        lines += _search_metrics(state)
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")
