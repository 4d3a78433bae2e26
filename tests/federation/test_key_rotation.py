"""A member's key rotation is a statement signed by its old key; nothing else moves the hub."""

from __future__ import annotations

import pytest

from anchoring.auditor.key_rotation import RotationError, open_rotation, sign_rotation
from anchoring.note import NoteSigner
from anchoring.witness import format_add_checkpoint
from registry.federation.trust import add_member
from tests.federation.memberlog import MemberLog

MEMBER = "province-e.example.gov.cn/log"


def test_statement_rules() -> None:
    old, new = NoteSigner.generate(MEMBER), NoteSigner.generate(MEMBER)
    statement = sign_rotation(old, new.verifier_key)
    assert open_rotation(statement, old.verifier).new_key == new.verifier
    with pytest.raises(RotationError):  # signed by the new key: proves nothing
        open_rotation(sign_rotation(new, old.verifier_key), old.verifier)
    with pytest.raises(RotationError):  # another name than the origin
        sign_rotation(old, NoteSigner.generate("other.example/log").verifier_key)
    with pytest.raises(RotationError):
        open_rotation(statement.replace(MEMBER, "province-x.example.gov.cn/log", 1),
                      old.verifier)


def test_hub_follows_a_rotation_signed_by_the_old_key(registry) -> None:  # type: ignore[no-untyped-def]
    old = NoteSigner.generate(MEMBER)
    log = MemberLog(old).extend(5)
    with registry.state.db.write() as session:
        add_member(session, MEMBER, old.verifier_key)
    post = registry.client.post
    assert post("/witness/add-checkpoint", data=format_add_checkpoint(0, [], log.note()),
                content_type="text/plain").status_code == 200
    new = NoteSigner.generate(MEMBER)
    forged = post("/api/v1/federation/members/rotate",
                  json={"origin": MEMBER, "statement": sign_rotation(new, old.verifier_key)})
    assert forged.status_code == 422
    assert forged.get_json()["errors"][0]["pointer"] == "/statement"
    ok = post("/api/v1/federation/members/rotate",
              json={"origin": MEMBER, "statement": sign_rotation(old, new.verifier_key)})
    assert ok.status_code == 200 and ok.get_json()["verifier_key"] == new.verifier_key
    log.signer = new
    log.extend(3)
    assert post("/witness/add-checkpoint", data=format_add_checkpoint(5, log.proof(5),
                log.note()), content_type="text/plain").status_code == 200
    log.signer = old  # the old key no longer speaks for the member
    log.extend(1)
    assert post("/witness/add-checkpoint", data=format_add_checkpoint(8, log.proof(8),
                log.note()), content_type="text/plain").status_code == 403
    assert post("/api/v1/federation/members/rotate", json={"origin": 1}).status_code == 400
