"""Two hubs compare what they cosigned for the same member and catch a split view."""

from __future__ import annotations

from anchoring.auditor.evidence import verify_evidence
from anchoring.note import NoteSigner
from anchoring.witness import format_add_checkpoint
from registry.federation.gossip import GossipLoop
from registry.federation.models import FederationMember
from registry.federation.runtime import federation
from registry.federation.trust import add_member
from tests.federation.conftest import serve
from tests.federation.memberlog import MemberLog

MEMBER = "province-d.example.gov.cn/log"


def _witness(hub, log: MemberLog) -> None:  # type: ignore[no-untyped-def]
    response = hub.client.post("/witness/add-checkpoint",
                               data=format_add_checkpoint(0, [], log.note()),
                               content_type="text/plain")
    assert response.status_code == 200, response.text


def test_gossip_finds_a_split_view_and_proves_it(make_registry, served) -> None:  # type: ignore[no-untyped-def]
    hub_a = make_registry("hub-a", "hub-a.example.gov.cn/log")
    hub_b = make_registry("hub-b", "hub-b.example.gov.cn/log")
    served.append(serve(hub_b))
    honest = MemberLog(NoteSigner.generate(MEMBER)).extend(9)
    for hub in (hub_a, hub_b):
        with hub.state.db.write() as session:
            add_member(session, MEMBER, honest.signer.verifier_key)
    _witness(hub_a, honest)
    _witness(hub_b, honest)
    gossip = GossipLoop(hub_a.state, [served[0].url], federation(hub_a.state).witness.signer.vkey)
    assert gossip.run_once() == {served[0].url: {MEMBER: "agree at size 9"}}

    # The member shows hub B another history of the same size.
    hub_b2 = make_registry("hub-b2", "hub-b2.example.gov.cn/log")
    served.append(serve(hub_b2))
    with hub_b2.state.db.write() as session:
        add_member(session, MEMBER, honest.signer.verifier_key)
    twin = honest.fork(5).extend(4, tag="twin")
    _witness(hub_b2, twin)
    gossip = GossipLoop(hub_a.state, [served[1].url], federation(hub_a.state).witness.signer.vkey)
    assert gossip.run_once() == {served[1].url: {MEMBER: "SPLIT VIEW at size 9"}}
    with hub_a.state.db.read() as session:
        assert "split view" in session.get(FederationMember, MEMBER).alarm
    (item,) = hub_a.client.get("/api/v1/federation/evidence").get_json()["evidence"]
    assert all(s.ok for s in verify_evidence(item["evidence"], honest.signer.verifier))
    # Hub A stops cosigning the member.
    response = hub_a.client.post("/witness/add-checkpoint",
                                 data=format_add_checkpoint(9, [], honest.note()),
                                 content_type="text/plain")
    assert response.status_code == 403


def test_a_peer_answering_garbage_changes_nothing(make_registry, served) -> None:  # type: ignore[no-untyped-def]
    hub = make_registry("hub", "hub.example.gov.cn/log")
    honest = MemberLog(NoteSigner.generate(MEMBER)).extend(3)
    with hub.state.db.write() as session:
        add_member(session, MEMBER, honest.signer.verifier_key)
    _witness(hub, honest)
    outcome = GossipLoop(hub.state, ["http://127.0.0.1:9"], "x").run_once()
    assert outcome["http://127.0.0.1:9"][MEMBER].startswith("peer has nothing")
    with hub.state.db.read() as session:
        assert session.get(FederationMember, MEMBER).alarm is None
