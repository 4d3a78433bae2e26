"""The portal's network page: a server-rendered drawing of members, statuses and history."""

from __future__ import annotations

from anchoring.note import NoteSigner
from anchoring.witness import format_add_checkpoint
from registry.federation.harvest import LABEL, add_source
from registry.federation.models import FederationMember
from registry.federation.trust import add_member, remove_member
from tests.federation.memberlog import MemberLog


def test_network_page_draws_members_with_their_status(registry) -> None:  # type: ignore[no-untyped-def]
    logs = {name: MemberLog(NoteSigner.generate(name)).extend(n) for name, n in (
        ("ok.example.gov.cn/log", 7), ("forked.example.gov.cn/log", 5),
        ("gone.example.gov.cn/log", 3), ("<script>alert(1)</script>/log", 2))}
    with registry.state.db.write() as session:
        for name, log in logs.items():
            add_member(session, name, log.signer.verifier_key)
        add_source(session, "datajson", "https://city.example.cn/data.json")
    for log in logs.values():
        assert registry.client.post("/witness/add-checkpoint", data=format_add_checkpoint(
            0, [], log.note()), content_type="text/plain").status_code == 200
    with registry.state.db.write() as session:
        session.get(FederationMember, "forked.example.gov.cn/log").alarm = "fork-same-size"
        remove_member(session, "gone.example.gov.cn/log")
    page = registry.client.get("/network?lang=en")
    assert page.status_code == 200
    html = page.text
    assert "<svg" in html and "<polyline" in html and "<script>alert" not in html
    assert "&lt;script&gt;" in html
    for name in ("ok.example.gov.cn/log", "forked.example.gov.cn/log"):
        assert name in html
    assert "ALARM" in html and "removed (records kept)" in html and LABEL in html
    assert 'stroke="#cf222e"' in html  # the alarm colour is drawn
    zh = registry.client.get("/network?lang=zh").text
    assert "数据目录网络" in zh and "告警" in zh
