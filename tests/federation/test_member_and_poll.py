"""A member registry submits to a hub over HTTP; a hub polls a member; members go offline."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from anchoring.auditor.cosignature import CosignatureVerifier, verify_cosignatures
from anchoring.auditor.member_entry import parse_member_entry
from registry.federation.member import (
    CheckpointSubmitter,
    WitnessEndpoint,
    latest_witnessed_size,
    parse_witness_config,
)
from registry.federation.models import FederationMember, WitnessedCheckpoint
from registry.federation.poller import MemberPoller
from registry.federation.runtime import federation
from registry.federation.trust import add_member
from tests.catalogue.helpers import metadata
from tests.federation.conftest import serve

MEMBER_ORIGIN = "province-a.example.gov.cn/log"
HUB_ORIGIN = "hub.example.gov.cn/log"


def publish(member, title: str) -> None:  # type: ignore[no-untyped-def]
    org = "dept" if _has_org(member) else member.org("dept")
    token = member.token(org)
    r = member.client.post("/api/v1/datasets", headers=member.auth(token),
                           json={"metadata": metadata(title={"zh": title, "en": title})})
    assert r.status_code == 201, r.get_json()
    with member.state.db.write() as session:
        member.state.log.sign_checkpoint_if_grown(session)


def _has_org(member) -> bool:  # type: ignore[no-untyped-def]
    from registry.organizations.models import Organization

    with member.state.db.read() as session:
        return session.get(Organization, "dept") is not None


def _hub_member_entries(hub) -> list:  # type: ignore[no-untyped-def]
    with hub.state.db.read() as session:
        rows = session.scalars(select(WitnessedCheckpoint).order_by(
            WitnessedCheckpoint.size)).all()
        return [parse_member_entry(hub.state.log.entry(session, r.hub_leaf_index))
                for r in rows]


@pytest.fixture
def hub_and_member(make_registry, served):  # type: ignore[no-untyped-def]
    hub = make_registry("hub", HUB_ORIGIN)
    member = make_registry("member", MEMBER_ORIGIN)
    served.append(serve(hub))
    served.append(serve(member))
    return hub, member, served[0].url, served[1].url


def test_member_submits_in_the_background_and_serves_cosignatures(hub_and_member) -> None:  # type: ignore[no-untyped-def]
    hub, member, hub_url, _ = hub_and_member
    with hub.state.db.write() as session:
        add_member(session, MEMBER_ORIGIN, member.state.log.verifier_key)
    witness_key = hub.client.get("/witness/key").text.strip()
    endpoints = parse_witness_config(f"{hub_url}/witness {witness_key}")
    submitter = CheckpointSubmitter(member.state.db.read, member.state.db.write,
                                    member.state.log, endpoints)
    publish(member, "公路 one")
    assert submitter.run_once() == {endpoints[0].verifier.name: "cosigned size 1"}
    note = member.client.get("/log/checkpoint").text
    verifier = CosignatureVerifier.from_vkey(witness_key)
    assert verify_cosignatures(note, [verifier])[0].name == verifier.name
    for title in ("two", "three", "four"):
        publish(member, title)
    outcome = submitter.run_once()  # consistency proof from size 1 to 4
    assert outcome == {verifier.name: "cosigned size 4"}, outcome
    assert submitter.run_once() == {verifier.name: "up to date"}
    with member.state.db.read() as session:
        assert latest_witnessed_size(session, 1) == 4
        assert latest_witnessed_size(session, 2) is None  # a quorum of two is not met
    assert [(e.origin, e.size) for e in _hub_member_entries(hub)] == [
        (MEMBER_ORIGIN, 1), (MEMBER_ORIGIN, 4)]
    # A fresh submitter (a restarted process) learns the witness's size from its 409.
    again = CheckpointSubmitter(member.state.db.read, member.state.db.write, member.state.log,
                                endpoints)
    publish(member, "five")
    assert again.run_once() == {verifier.name: "cosigned size 5"}


def test_a_witness_that_lies_is_not_believed(hub_and_member) -> None:  # type: ignore[no-untyped-def]
    """The submitter checks the cosignature with the key it was configured with."""
    hub, member, hub_url, _ = hub_and_member
    with hub.state.db.write() as session:
        add_member(session, MEMBER_ORIGIN, member.state.log.verifier_key)
    from anchoring.note import NoteSigner
    from anchoring.witness import CosignatureSigner

    real_name = federation(hub.state).witness.signer.name
    impostor = CosignatureSigner.from_note_signer(NoteSigner.generate(real_name))
    submitter = CheckpointSubmitter(member.state.db.read, member.state.db.write,
                                    member.state.log,
                                    [WitnessEndpoint(hub_url + "/witness", impostor.verifier)])
    publish(member, "one")
    outcome = submitter.run_once()
    assert outcome[real_name].startswith("error"), outcome
    from registry.federation.models import MemberCosignature

    with member.state.db.read() as session:
        assert session.scalars(select(MemberCosignature)).all() == []
    assert member.client.get("/log/checkpoint").text.count("\u2014 ") == 1  # its own only


def test_hub_polls_a_member_that_does_not_push_and_survives_it_going_away(
        hub_and_member) -> None:  # type: ignore[no-untyped-def]
    hub, member, _, member_url = hub_and_member
    with hub.state.db.write() as session:
        add_member(session, MEMBER_ORIGIN, member.state.log.verifier_key, url=member_url,
                   mode="poll", interval=1)
    poller = MemberPoller(hub.state.db.read, hub.state.db.write, federation(hub.state).witness,
                          timeout=2)
    publish(member, "one")
    publish(member, "two")
    publish(member, "three")
    assert poller.run_once(force=True) == {MEMBER_ORIGIN: "200 cosign"}
    publish(member, "four")
    assert poller.run_once(force=True) == {MEMBER_ORIGIN: "200 cosign"}
    assert [e.size for e in _hub_member_entries(hub)] == [3, 4]
    # Offline: the error is recorded, nothing else changes, and the loop goes on.
    bad = MemberPoller(hub.state.db.read, hub.state.db.write, federation(hub.state).witness,
                       timeout=1)
    with hub.state.db.write() as session:
        session.get(FederationMember, MEMBER_ORIGIN).url = "http://127.0.0.1:9"
    outcome = bad.run_once(force=True)
    assert outcome[MEMBER_ORIGIN].startswith("error"), outcome
    with hub.state.db.read() as session:
        row = session.get(FederationMember, MEMBER_ORIGIN)
        assert row.last_error and row.witnessed_size == 4
    # Back online: polling resumes from the cosigned size.
    with hub.state.db.write() as session:
        session.get(FederationMember, MEMBER_ORIGIN).url = member_url
    publish(member, "five")
    assert poller.run_once(force=True) == {MEMBER_ORIGIN: "200 cosign"}
    assert [e.size for e in _hub_member_entries(hub)] == [3, 4, 5]


def test_member_serving_garbage_never_breaks_the_poller(make_registry, served) -> None:  # type: ignore[no-untyped-def]
    from flask import Flask

    hub = make_registry("hub", HUB_ORIGIN)
    garbage = Flask("garbage")

    @garbage.get("/log/checkpoint")
    def _checkpoint() -> str:
        return "\x00not a checkpoint" * 1000

    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, garbage, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from anchoring.note import NoteSigner

        with hub.state.db.write() as session:
            add_member(session, MEMBER_ORIGIN, NoteSigner.generate(MEMBER_ORIGIN).verifier_key,
                       url=f"http://127.0.0.1:{server.server_port}", mode="poll", interval=1)
        poller = MemberPoller(hub.state.db.read, hub.state.db.write,
                              federation(hub.state).witness, timeout=2)
        outcome = poller.run_once(force=True)
        assert "not a checkpoint" in outcome[MEMBER_ORIGIN]
        with hub.state.db.read() as session:
            assert hub.state.log.size(session) == 0
    finally:
        server.shutdown()
