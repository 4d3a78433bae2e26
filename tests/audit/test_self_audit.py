"""The server audits itself (issue 13, F5): a flipped byte raises an alarm that halts writes
and signing, turns /readyz to 503 naming the leaf, shows in /metrics, and holds until an
operator acknowledges it after restoring the database."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from anchoring import tlog
from anchoring.log_store import LogAuditAlarm, LogHalted, open_alarms
from anchoring.self_audit import acknowledge_alarms, load_progress
from registry.bootstrap import build_self_audit
from registry.datasets.models import DatasetVersion
from tests.audit.helpers import build_catalogue, flip_byte, publish
from tests.catalogue.helpers import counts


def test_a_clean_registry_audits_clean_and_the_sweep_resumes(registry) -> None:  # type: ignore[no-untyped-def]
    build_catalogue(registry)
    audit = build_self_audit(registry.state)
    audit._leaves = 2  # small batches: the sweep must resume where it stopped
    seen = []
    for _ in range(4):
        assert audit.run_once() == []
        with registry.state.db.read() as session:
            seen.append(load_progress(session).next_leaf)
    assert seen[:2] == [2, 4]  # persisted position, one batch further each tick
    with registry.state.db.read() as session:
        assert load_progress(session).sweeps >= 1  # reached the head (6 leaves) and wrapped
    assert audit.run_full() == []
    assert registry.client.get("/readyz").status_code == 200


def test_one_stored_copy_of_each_entry(registry) -> None:  # type: ignore[no-untyped-def]
    """Bundles, tiles and the API read the same bytes, so they cannot disagree (F5)."""
    catalogue = build_catalogue(registry)
    with registry.state.db.read() as session:
        columns = list(session.execute(text("SELECT * FROM dataset_versions LIMIT 1")).keys())
    assert "log_entry" not in columns and "metadata_salt" in columns
    index = catalogue.public["log"]["index"]
    with registry.state.db.read() as session:
        stored = registry.state.log.entry(session, index)
    assert catalogue.public["log"]["entry"].encode() == stored
    bundle = registry.client.get(f"/api/v1/datasets/{catalogue.public['id']}/versions/1/proof"
                                 ).get_json()
    assert bundle["entry"].encode() == stored
    flip_byte(registry.state.db, "log_entries", "entry", "idx = :i", {"i": index})
    with registry.state.db.read() as session:
        tampered = registry.state.log.entry(session, index)
    api = registry.client.get(f"/api/v1/datasets/{catalogue.public['id']}").get_json()
    assert api["log"]["entry"].encode() == tampered  # no untouched second copy to hide behind


@pytest.mark.parametrize("table, column, where", [
    ("log_entries", "entry", "idx = 1"),
    ("log_entries", "leaf_hash", "idx = 2"),
    ("log_hashes", "hash", "idx = 1"),
    ("dataset_versions", "metadata_json", "leaf_index = 0"),
    ("dataset_versions", "metadata_sha256", "leaf_index = 0"),
    ("dataset_versions", "metadata_salt", "leaf_index = 1"),
    ("dataset_versions", "receipt", "leaf_index = 0"),
])
def test_a_flipped_byte_halts_writes_and_signing_until_acknowledged(  # type: ignore[no-untyped-def]
        registry, table: str, column: str, where: str) -> None:
    catalogue = build_catalogue(registry)
    audit = build_self_audit(registry.state)
    flip_byte(registry.state.db, table, column, where, {})
    findings = audit.run_once() or audit.run_full()
    assert findings, f"{table}.{column} flip went unnoticed"
    if not audit.run_once():  # the sweep may have passed; run_full found it: raise it
        audit.raise_alarms(findings)
    with registry.state.db.read() as session:
        alarms = open_alarms(session)
    assert alarms and alarms[0].leaf_index is not None

    ready = registry.client.get("/readyz")
    assert ready.status_code == 503
    body = ready.get_json()
    assert f"at leaf {alarms[0].leaf_index}" in body["checks"]["self_audit"]
    assert body["alarms"][0]["leaf_index"] == alarms[0].leaf_index
    assert "ndr_self_audit_alarms 0" not in registry.client.get("/metrics").get_data(
        as_text=True)

    before = counts(registry)
    r = registry.client.post("/api/v1/datasets", json={"metadata": catalogue.public["metadata"]},
                             headers=catalogue.editor)
    assert r.status_code == 503 and r.content_type == "application/problem+json"
    assert "self-audit" in r.get_json()["detail"]
    assert counts(registry) == before  # nothing half-written
    proof = registry.client.get(f"/api/v1/datasets/{catalogue.public['id']}/versions/1/proof")
    assert proof.status_code == 503 and "self-audit" in proof.get_json()["detail"]
    with registry.state.db.write() as session, pytest.raises(LogHalted):
        registry.state.log.sign_checkpoint_if_grown(session)

    # The operator restores the byte and acknowledges; writes resume.
    flip_byte(registry.state.db, table, column, where, {})
    assert audit.run_full() == []
    with registry.state.db.write() as session:
        assert acknowledge_alarms(session, "test operator") >= 1
    assert registry.client.get("/readyz").status_code == 200
    publish(registry, catalogue.editor)


def test_acknowledging_without_restoring_raises_the_alarm_again(registry) -> None:  # type: ignore[no-untyped-def]
    build_catalogue(registry)
    audit = build_self_audit(registry.state)
    flip_byte(registry.state.db, "log_hashes", "hash", "idx = 0", {})
    assert audit.run_once()
    with registry.state.db.write() as session:
        acknowledge_alarms(session, "hasty operator")
    assert registry.client.get("/readyz").status_code == 200
    assert audit.run_once()  # the sweep restarts from leaf 0 and finds it again
    assert registry.client.get("/readyz").status_code == 503


def test_cli_log_audit_refuses_to_acknowledge_while_a_mismatch_remains(  # type: ignore[no-untyped-def]
        registry, monkeypatch) -> None:
    from click.testing import CliRunner

    from registry.cli import cli

    build_catalogue(registry)
    settings = registry.state.settings
    monkeypatch.setenv("DATABASE_URL", registry.state.db.url)
    monkeypatch.setenv("NDR_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("NDR_LOG_KEY_FILE", str(settings.log_key_file))
    monkeypatch.setenv("NDR_SEARCH_SNAPSHOT", "0")
    flip_byte(registry.state.db, "dataset_versions", "metadata_json", "leaf_index = 2", {})
    build_self_audit(registry.state).run_once()
    result = CliRunner().invoke(cli, ["log", "audit", "--acknowledge"])
    assert result.exit_code == 1, result.output
    assert "mismatch now: catalogue mismatch at leaf 2" in result.output
    with registry.state.db.read() as session:
        assert open_alarms(session)
    flip_byte(registry.state.db, "dataset_versions", "metadata_json", "leaf_index = 2", {})
    result = CliRunner().invoke(cli, ["log", "audit", "--acknowledge", "--by", "alice"])
    assert result.exit_code == 0, result.output
    assert "acknowledged 1 alarm(s)" in result.output
    with registry.state.db.read() as session:
        assert not open_alarms(session)
        alarm = session.scalars(select(LogAuditAlarm)).one()
    assert alarm.acknowledged_by == "alice"


def test_government_entries_are_salted_v2_and_bundles_carry_the_salt(registry) -> None:  # type: ignore[no-untyped-def]
    import json

    from anchoring.auditor.entry import metadata_commitment, parse_entry
    from anchoring.auditor.verify import verify_bundle
    from anchoring.bundle import parse_bundle
    from anchoring.jcs import canonicalize

    catalogue = build_catalogue(registry)
    reader = registry.auth(registry.token("mot", "member"))
    government = catalogue.government
    entry = parse_entry(government["log"]["entry"].encode())
    assert entry.v == 2 and entry.get("visibility") == "government"
    plain = metadata_commitment(canonicalize(government["metadata"]))
    assert entry.get("metadata_sha256") != plain  # a guess cannot be confirmed publicly
    assert government["metadata_sha256"] == plain  # the catalogue's own (private) hash
    salt = government["log"]["metadata_salt"]
    assert len(salt) == 64
    assert parse_entry(catalogue.public["log"]["entry"].encode()).v == 1
    assert "metadata_salt" not in catalogue.public["log"]
    bundle = registry.client.get(f"/api/v1/datasets/{government['id']}/versions/1/proof",
                                 headers=reader).get_json()
    assert bundle["metadata_salt"] == salt
    assert registry.client.get(f"/api/v1/datasets/{government['id']}/versions/1/proof"
                               ).status_code == 404  # anonymous readers get neither
    report = verify_bundle(parse_bundle(bundle), registry.state.log.signer.verifier)
    assert report.ok, [s for s in report.steps if not s.ok]
    wrong = {**bundle, "metadata_salt": "00" * 32}
    report = verify_bundle(parse_bundle(json.dumps(wrong)), registry.state.log.signer.verifier)
    assert not report.ok and report.first_failure.name == "metadata hash"
    unsalted = {k: v for k, v in bundle.items() if k != "metadata_salt"}
    report = verify_bundle(parse_bundle(unsalted), registry.state.log.signer.verifier)
    assert not report.ok


def test_interior_hashes_are_rederived_from_the_entries(registry) -> None:  # type: ignore[no-untyped-def]
    """A consistent forgery of an interior hash (valid bytes, wrong value) is still found."""
    build_catalogue(registry)
    index = tlog.stored_hash_index(1, 0)  # hash of leaves 0 and 1
    with registry.state.db.write() as session:
        session.execute(text("UPDATE log_hashes SET hash = :h WHERE idx = :i"),
                        {"h": bytes(32), "i": index})
    findings = build_self_audit(registry.state).run_full()
    assert any(f.kind == "stored hash mismatch" and f.leaf_index == 1 for f in findings)


def test_versions_agree_with_their_entries(registry) -> None:  # type: ignore[no-untyped-def]
    catalogue = build_catalogue(registry)
    with registry.state.db.write() as session:
        session.execute(text("UPDATE dataset_versions SET visibility = 'public' "
                             "WHERE leaf_index = 1"))
    findings = build_self_audit(registry.state).run_full()
    assert any("visibility" in f.detail and f.leaf_index == 1 for f in findings), findings
    with registry.state.db.read() as session:
        versions = session.scalars(select(DatasetVersion).where(
            DatasetVersion.dataset_id == catalogue.draft["id"])).all()
    assert versions and versions[0].leaf_index is None


def test_one_process_sweeps_the_others_only_sample(registry) -> None:  # type: ignore[no-untyped-def]
    build_catalogue(registry)
    first, second = build_self_audit(registry.state), build_self_audit(registry.state)
    first._leaves = second._leaves = 2
    first.run_once()
    with registry.state.db.read() as session:
        after_first = load_progress(session).next_leaf
    second.run_once()  # the lease is first's: no sweep, the position does not move
    with registry.state.db.read() as session:
        assert load_progress(session).next_leaf == after_first == 2
    first.stop()  # releases the lease
    second.run_once()
    with registry.state.db.read() as session:
        assert load_progress(session).next_leaf == 4


def test_monitor_alarms_on_a_signed_entry_that_breaks_the_format(registry) -> None:  # type: ignore[no-untyped-def]
    """`ndr monitor --state` checks every new entry's content, not only its hash path."""
    import threading

    from werkzeug.serving import make_server

    from anchoring.auditor.monitor import MonitorAlarm, run_monitor

    build_catalogue(registry)
    server = make_server("127.0.0.1", 0, registry.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/log/"
        verifier = registry.state.log.signer.verifier
        state = registry.state.settings.var_dir / "monitor.json"
        assert run_monitor(url, verifier, state).size == 6
        with registry.state.db.write() as session:  # a log that signs garbage
            registry.state.log.append(session, [b'{"type":"dataset.published","v":1}'])
            registry.state.log.sign_checkpoint_if_grown(session)
        with pytest.raises(MonitorAlarm, match="entry 6 is not a valid log entry"):
            run_monitor(url, verifier, state)
    finally:
        server.shutdown()
        thread.join(10)
