"""The hub's tlog-witness endpoint on a real registry (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from anchoring.auditor.cosignature import CosignatureVerifier, verify_cosignatures
from anchoring.auditor.evidence import INCONSISTENT, SAME_SIZE, verify_evidence
from anchoring.auditor.member_entry import parse_member_entry
from anchoring.note import NoteSigner
from anchoring.witness import format_add_checkpoint
from registry.federation.models import FederationMember, WitnessedCheckpoint, WitnessEvidence
from registry.federation.trust import add_member, remove_member
from tests.federation.memberlog import MemberLog

MEMBER = "province-a.example.gov.cn/log"


@pytest.fixture
def member() -> MemberLog:
    return MemberLog(NoteSigner.generate(MEMBER)).extend(11)


def _add(registry, member: MemberLog) -> None:  # type: ignore[no-untyped-def]
    with registry.state.db.write() as session:
        add_member(session, member.origin, member.signer.verifier_key)


def _post(registry, old: int, proof: list[bytes], note: str):  # type: ignore[no-untyped-def]
    return registry.client.post("/witness/add-checkpoint",
                                data=format_add_checkpoint(old, proof, note),
                                content_type="text/plain")


def _witness_key(registry) -> CosignatureVerifier:  # type: ignore[no-untyped-def]
    return CosignatureVerifier.from_vkey(registry.client.get("/witness/key").text)


def _hub_leaves(registry) -> int:  # type: ignore[no-untyped-def]
    with registry.state.db.read() as session:
        return registry.state.log.size(session)


def test_cosigns_and_logs_each_new_member_checkpoint(registry, member) -> None:  # type: ignore[no-untyped-def]
    _add(registry, member)
    response = _post(registry, 0, [], member.note(5))
    assert response.status_code == 200, response.text
    assert response.text.startswith("\u2014 ")
    cosigned = verify_cosignatures(member.note(5) + response.text, [_witness_key(registry)])
    assert len(cosigned) == 1
    response = _post(registry, 5, member.proof(5), member.note())
    assert response.status_code == 200, response.text
    # Re-submitting the same checkpoint is cosigned again but logged once.
    assert _post(registry, 11, [], member.note()).status_code == 200
    with registry.state.db.read() as session:
        rows = session.scalars(select(WitnessedCheckpoint).order_by(
            WitnessedCheckpoint.size)).all()
        assert [r.size for r in rows] == [5, 11]
        entries = [parse_member_entry(registry.state.log.entry(session, r.hub_leaf_index))
                   for r in rows]
    assert [(e.origin, e.size, e.root) for e in entries] == [
        (MEMBER, 5, member.root(5)), (MEMBER, 11, member.root())]
    # The logged note carries the member's signature and the hub's cosignature.
    verify_cosignatures(entries[1].checkpoint, [_witness_key(registry)])
    assert _hub_leaves(registry) == 2
    members = registry.client.get("/api/v1/federation/members").json["members"]
    assert members[0]["witnessed_size"] == 11 and members[0]["alarm"] is None
    latest = registry.client.get("/api/v1/federation/cosigned",
                                 query_string={"origin": MEMBER}).json
    assert latest["size"] == 11


def test_refusals_use_the_spec_status_codes(registry, member) -> None:  # type: ignore[no-untyped-def]
    unknown = _post(registry, 0, [], member.note())
    assert unknown.status_code == 404
    _add(registry, member)
    assert _post(registry, 0, [], member.note(5)).status_code == 200
    assert f'ndr_federation_alarm{{origin="{MEMBER}"}} 0' in registry.client.get("/metrics").text
    stale = _post(registry, 3, member.proof(3), member.note())
    assert stale.status_code == 409
    assert stale.headers["Content-Type"].startswith("text/x.tlog.size")
    assert stale.text == "5\n"
    assert _post(registry, 12, [], member.note()).status_code == 400
    stranger = MemberLog(NoteSigner.generate(MEMBER)).extend(11)
    assert _post(registry, 5, stranger.proof(5), stranger.note()).status_code == 403
    garbage = _post(registry, 5, [bytes(32)] * 4, member.note())
    assert garbage.status_code == 422
    malformed = registry.client.post("/witness/add-checkpoint", data=b"old 5\nnope",
                                     content_type="text/plain")
    assert malformed.status_code == 400
    assert _hub_leaves(registry) == 1  # only the one cosigned checkpoint was logged
    with registry.state.db.read() as session:
        assert session.scalar(select(func.count()).select_from(WitnessEvidence)) == 0
        assert "refused" in (session.get(FederationMember, MEMBER).last_error or "")
    # A removed member is unknown again: 404.
    with registry.state.db.write() as session:
        remove_member(session, MEMBER)
    assert _post(registry, 5, member.proof(5), member.note()).status_code == 404


def test_same_size_fork_is_refused_kept_and_alarmed(registry, member, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _add(registry, member)
    assert _post(registry, 0, [], member.note()).status_code == 200
    twin = member.fork(4).extend(7, tag="twin")
    response = _post(registry, 11, [], twin.note())
    assert response.status_code == 409
    # Cosigning stopped, even for the honest-looking checkpoint.
    assert _post(registry, 11, [], member.note()).status_code == 403
    listed = registry.client.get("/api/v1/federation/evidence").json["evidence"]
    assert [e["kind"] for e in listed] == [SAME_SIZE]
    raw = registry.client.get(f"/api/v1/federation/evidence/{listed[0]['id']}").text
    steps = verify_evidence(json.loads(raw), member.signer.verifier, _witness_key(registry))
    assert all(s.ok for s in steps), steps
    # ndr verify-evidence checks it offline, with the member's key from the auditor.
    path = tmp_path / "evidence.json"
    path.write_text(raw)
    ok = subprocess.run([sys.executable, "-m", "anchoring.auditor", "verify-evidence",
                         str(path), "--key", member.signer.verifier_key,
                         "--witness-key", _witness_key(registry).vkey],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "fork proven" in ok.stdout
    wrong = subprocess.run([sys.executable, "-m", "anchoring.auditor", "verify-evidence",
                            str(path), "--key", NoteSigner.generate(MEMBER).verifier_key],
                           capture_output=True, text=True)
    assert wrong.returncode == 1
    members = registry.client.get("/api/v1/federation/members").json["members"]
    assert "fork-same-size" in members[0]["alarm"]
    assert f'ndr_federation_alarm{{origin="{MEMBER}"}} 1' in registry.client.get("/metrics").text
    assert MEMBER in registry.client.get("/readyz").json["federation_alarms"]


def test_inconsistent_extension_is_refused_with_the_members_own_proof(registry, member) -> None:  # type: ignore[no-untyped-def]
    _add(registry, member)
    assert _post(registry, 0, [], member.note()).status_code == 200
    twin = member.fork(6).extend(5, tag="twin").extend(9)
    response = _post(registry, 11, twin.proof(11), twin.note())
    assert response.status_code == 422
    (item,) = registry.client.get("/api/v1/federation/evidence").json["evidence"]
    assert item["kind"] == INCONSISTENT
    assert all(s.ok for s in verify_evidence(item["evidence"], member.signer.verifier))
    assert _hub_leaves(registry) == 1
