"""A member rotates its own log key: the checkpointer signs with the new key, everything that
checks the old checkpoints still accepts them through the rotation chain, and the hub follows
on the old key's word without an operator (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from anchoring.auditor.entry import parse_entry
from anchoring.auditor.key_rotation import sign_rotation
from anchoring.checkpoint import open_checkpoint
from anchoring.keys import load_key_file, write_key_file
from anchoring.log_store import LogAuditAlarm, LogError, LogKeyRotation, TransparencyLog
from anchoring.note import NoteSigner, NoteVerifier
from registry.bootstrap import build_self_audit
from registry.federation.mirror import Mirror
from registry.federation.models import FederationMember
from registry.federation.poller import MemberPoller
from registry.federation.runtime import federation
from registry.federation.trust import add_member
from registry.log_rotation import RotationRefused, rotate_log_key
from tests.conftest import build_registry
from tests.federation.test_mirror import MEMBER_ORIGIN, Setup, setup  # noqa: F401


def _key_file(harness) -> Path:  # type: ignore[no-untyped-def]
    return Path(harness.state.settings.log_key_file)


def _monitor(url: str, key: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "anchoring.auditor", "monitor", url + "/log/",
                           "--key", key, "--state", str(state)], capture_output=True, text=True)


def _restart(harness):  # type: ignore[no-untyped-def]
    """The same registry started again: same database, same var directory (key file)."""
    settings = harness.state.settings
    os.environ["NDR_LOG_ORIGIN"] = harness.state.log.origin
    try:
        return build_registry(settings.database_url, settings.var_dir)
    finally:
        os.environ.pop("NDR_LOG_ORIGIN", None)


def _full_audit(harness) -> list:  # type: ignore[no-untyped-def]
    return build_self_audit(harness.state).run_full()


def test_member_rotates_and_the_hub_keeps_cosigning_and_mirroring(
        setup: Setup, tmp_path: Path) -> None:  # noqa: F811
    member, hub = setup.member, setup.hub
    setup.follow()
    setup.publish("Before rotation survey")
    setup.witness()
    assert Mirror(hub.state).run_member(MEMBER_ORIGIN).mirrored == 1
    old_key = member.state.log.verifier_key
    monitor_state = tmp_path / "monitor.json"
    first = _monitor(setup.member_url, old_key, monitor_state)
    assert first.returncode == 0, first.stdout + first.stderr
    with member.state.db.read() as session:
        old_checkpoint = member.state.log.latest_checkpoint(session)

    outcome = rotate_log_key(member.state, _key_file(member))

    # Key files: the new key in place, the old one kept, both 0600.
    key_file = _key_file(member)
    assert load_key_file(key_file).verifier_key == outcome.new_key != old_key
    assert outcome.retired_file is not None
    assert load_key_file(outcome.retired_file).verifier_key == old_key
    for path in (key_file, outcome.retired_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not key_file.with_name(key_file.name + ".new").exists()
    # The rotation is a leaf of the member's own log, published next to its checkpoint.
    with member.state.db.read() as session:
        leaf = parse_entry(member.state.log.entry(session, outcome.leaf_index))
        latest = member.state.log.latest_checkpoint(session)
    assert leaf.type == "log.key-rotation" and leaf.get("statement") == outcome.statement
    assert latest.size == outcome.checkpoint_size == outcome.leaf_index + 1
    open_checkpoint(latest.note, NoteVerifier.from_vkey(outcome.new_key))
    served = member.client.get("/log/key-rotations").get_json()
    assert [r["statement"] for r in served["rotations"]] == [outcome.statement]
    assert member.client.get("/log/key").text.strip() == outcome.new_key

    # More publishing; the submitter sends the rotation after the hub's 403 and goes on.
    setup.publish("After rotation census")
    setup.witness()
    members = hub.client.get("/api/v1/federation/members").get_json()["members"]
    assert members[0]["verifier_key"] == outcome.new_key and members[0]["alarm"] is None
    assert members[0]["key_history"] == [outcome.statement]
    report = Mirror(hub.state).run_member(MEMBER_ORIGIN)
    assert report.error is None and report.mirrored == 1, report
    assert setup.hub_search("census") == ["After rotation census"]

    # The member's own checks accept the old checkpoint and receipts through the chain.
    assert _full_audit(member) == []
    with member.state.db.read() as session:
        chain = member.state.log.key_chain(session)
        member.state.log.check_checkpoint_row(old_checkpoint, chain)
    assert [k.vkey for k in chain] == [old_key, outcome.new_key]
    # The monitor, still configured with the old key, follows the rotation.
    after = _monitor(setup.member_url, old_key, monitor_state)
    assert after.returncode == 0, after.stdout + after.stderr

    # After a restart: the new key signs, old checkpoints still check.
    restarted = _restart(member)
    try:
        assert restarted.state.log.verifier_key == outcome.new_key
        r = restarted.client.post("/api/v1/datasets", headers=restarted.auth(setup.token),
                                  json={"metadata": json.loads(json.dumps(
                                      _metadata("After restart registry")))})
        assert r.status_code == 201, r.get_json()
        with restarted.state.db.write() as session:
            signed = restarted.state.log.sign_checkpoint_if_grown(session)
        open_checkpoint(signed.note, NoteVerifier.from_vkey(outcome.new_key))
        assert _full_audit(restarted) == []
    finally:
        restarted.state.stop()
        restarted.state.db.dispose()
    again = _monitor(setup.member_url, old_key, monitor_state)
    assert again.returncode == 0, again.stdout + again.stderr


def _metadata(title: str) -> dict:
    from tests.catalogue.helpers import metadata

    return metadata(title={"zh": title, "en": title})


def test_a_poll_mode_hub_follows_the_published_rotation(setup: Setup) -> None:  # noqa: F811
    member, hub = setup.member, setup.hub
    with hub.state.db.write() as session:
        add_member(session, MEMBER_ORIGIN, member.state.log.verifier_key,
                   url=setup.member_url, mode="poll", interval=1)
    poller = MemberPoller(hub.state.db.read, hub.state.db.write, federation(hub.state).witness,
                          timeout=5)
    setup.publish("Polled before")
    with member.state.db.write() as session:
        member.state.log.sign_checkpoint_if_grown(session)
    assert poller.run_once(force=True) == {MEMBER_ORIGIN: "200 cosign"}
    outcome = rotate_log_key(member.state, _key_file(member))
    setup.publish("Polled after")
    with member.state.db.write() as session:
        member.state.log.sign_checkpoint_if_grown(session)
    assert poller.run_once(force=True) == {MEMBER_ORIGIN: "200 cosign"}
    with hub.state.db.read() as session:
        row = session.get(FederationMember, MEMBER_ORIGIN)
        assert row.verifier_key == outcome.new_key and row.alarm is None
        assert len(json.loads(row.key_history)) == 1


def test_a_rotation_signed_by_a_wrong_key_is_refused(registry) -> None:  # type: ignore[no-untyped-def]
    old, new = NoteSigner.generate(MEMBER_ORIGIN), NoteSigner.generate(MEMBER_ORIGIN)
    with registry.state.db.write() as session:
        add_member(session, MEMBER_ORIGIN, old.verifier_key)
    post = registry.client.post
    for statement in (sign_rotation(new, old.verifier_key),  # signed by the new key
                      sign_rotation(NoteSigner.generate(MEMBER_ORIGIN), new.verifier_key)):
        refused = post("/witness/key-rotation", data=statement, content_type="text/plain")
        assert refused.status_code == 422, refused.get_json()
        assert refused.get_json()["errors"][0]["pointer"] == "/statement"
    assert post("/witness/key-rotation", data=b"\xff\xfe", content_type="text/plain"
                ).status_code == 400
    assert post("/witness/key-rotation", data="not a note",
                content_type="text/plain").status_code == 422
    assert post("/witness/key-rotation", data="x" * 70000,
                content_type="text/plain").status_code == 400
    with registry.state.db.read() as session:
        assert session.get(FederationMember, MEMBER_ORIGIN).verifier_key == old.verifier_key
    good = sign_rotation(old, new.verifier_key)
    assert post("/witness/key-rotation", data=good, content_type="text/plain").status_code == 200
    # Sent again (a member re-sends its rotations after a 403): no change, no error.
    assert post("/witness/key-rotation", data=good, content_type="text/plain").status_code == 200
    with registry.state.db.read() as session:
        row = session.get(FederationMember, MEMBER_ORIGIN)
        assert row.verifier_key == new.verifier_key and len(json.loads(row.key_history)) == 1


def test_a_retired_key_never_signs_and_a_forged_chain_is_found(registry) -> None:  # type: ignore[no-untyped-def]
    log = registry.state.log
    with registry.state.db.write() as session:
        log.append(session, [b'{"placeholder":1}'])
    outcome = rotate_log_key(registry.state, _key_file(registry))
    stale = TransparencyLog(log.origin, load_key_file(outcome.retired_file))  # not reloaded
    with registry.state.db.write() as session:
        log.append(session, [b'{"placeholder":2}'])
    with pytest.raises(LogError, match="rotated"), registry.state.db.write() as session:
        stale.sign_checkpoint_if_grown(session)
    # A rotation row whose statement no key of the chain signed breaks the chain: found.
    intruder = NoteSigner.generate(log.origin)
    with registry.state.db.write() as session:
        session.add(LogKeyRotation(old_key=outcome.new_key, new_key=intruder.verifier_key,
                                   statement=sign_rotation(intruder, outcome.new_key),
                                   leaf_index=0, created_at=outcome_time()))
    kinds = {f.kind for f in _full_audit(registry)}
    assert "key rotation mismatch" in kinds
    with pytest.raises(LogError), registry.state.db.write() as session:
        log.sign_checkpoint_if_grown(session)


def outcome_time():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_a_failed_rotation_changes_nothing_and_an_interrupted_one_finishes(registry) -> None:  # type: ignore[no-untyped-def]
    key_file = _key_file(registry)
    before = key_file.read_text()
    with registry.state.db.write() as session:
        registry.state.log.append(session, [b'{"placeholder":1}'])
        session.add(LogAuditAlarm(detected_at=outcome_time(), kind="test", leaf_index=0,
                                  detail="halted for the test"))
        size = registry.state.log.size(session)
    with pytest.raises(RotationRefused, match="nothing changed"):
        rotate_log_key(registry.state, key_file)
    assert key_file.read_text() == before
    assert sorted(p.name for p in key_file.parent.iterdir() if p.name.startswith(
        key_file.name)) == [key_file.name]
    with registry.state.db.read() as session:
        assert session.scalar(select(func.count()).select_from(LogKeyRotation)) == 0
        assert registry.state.log.size(session) == size
    with registry.state.db.write() as session:
        session.query(LogAuditAlarm).delete()
    # Killed after the database recorded the rotation, before the key file was swapped.
    new = NoteSigner.generate(registry.state.log.origin)
    staged = key_file.with_name(key_file.name + ".new")
    write_key_file(staged, new)
    with registry.state.db.write() as session:
        registry.state.log.rotate_key(session, new)
    with pytest.raises(LogError, match="rotated"), registry.state.db.write() as session:
        registry.state.log.sign_checkpoint_if_grown(session)  # the file still has the old key
    finished = rotate_log_key(registry.state, key_file)
    assert finished.leaf_index is None and finished.new_key == new.verifier_key
    assert load_key_file(key_file).verifier_key == new.verifier_key and not staged.exists()
    # A staged key the database never recorded is discarded, and a rotation goes ahead.
    write_key_file(staged, NoteSigner.generate(registry.state.log.origin))
    third = rotate_log_key(registry.state, key_file)
    assert third.leaf_index is not None and third.old_key == new.verifier_key
    with registry.state.db.read() as session:
        assert len(registry.state.log.key_chain(session)) == 3


def test_ndr_log_rotate_key(database_url: str, tmp_path: Path) -> None:
    env = dict(os.environ, NDR_VAR_DIR=str(tmp_path / "var"), DATABASE_URL=database_url,
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))

    def ndr(*args: str, extra: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", "from registry.cli import main; "
                               "raise SystemExit(main())", *args], env={**env, **(extra or {})},
                              capture_output=True, text=True, timeout=120)

    assert ndr("init").returncode == 0
    old = ndr("log", "key").stdout.strip()
    rotated = ndr("log", "rotate-key")
    assert rotated.returncode == 0, rotated.stderr
    assert f"old key: {old}" in rotated.stdout and "rotation recorded as leaf 0" in rotated.stdout
    new = ndr("log", "key").stdout.strip()
    assert new != old and f"new key: {new}" in rotated.stdout
    assert "ndr.key-rotation/v1" in rotated.stdout
    checkpoint = ndr("log", "checkpoint").stdout.rstrip("\n") + "\n"
    open_checkpoint(checkpoint, NoteVerifier.from_vkey(new))
    audit = ndr("log", "audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    # A key given in the environment is not this command's to rotate.
    refused = ndr("log", "rotate-key", extra={
        "NDR_LOG_PRIVATE_KEY": NoteSigner.generate("x.example/log").encode_private_key()})
    assert refused.returncode != 0 and "NDR_LOG_PRIVATE_KEY" in refused.stderr
