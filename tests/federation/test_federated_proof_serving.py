"""The hub serves what a browser needs to check a federated entry by itself (SQLite and
PostgreSQL): the member's key from the trust configuration, the raw cosigned member
checkpoint, the witness key, the hub's key; both proof URLs give the same bundle, `ndr verify`
still accepts it, and a proof for an unknown or restricted entry is a problem, never a 500."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from anchoring.auditor.federated import FORMAT, verify_federated
from anchoring.note import NoteVerifier
from registry.federation.mirror import Mirror, hub_dataset_id
from tests.federation.test_mirror import MEMBER_ORIGIN, Setup, setup  # noqa: F401

PROBLEM = "application/problem+json"


def _mirrored(env: Setup) -> tuple[str, str]:
    env.follow()
    first = env.publish("Provincial road survey")
    env.publish("River gauge readings")
    env.witness()
    assert Mirror(env.hub.state).run_member(MEMBER_ORIGIN).mirrored == 2
    with env.hub.state.db.write() as session:
        env.hub.state.log.sign_checkpoint_if_grown(session)
    return first, hub_dataset_id(MEMBER_ORIGIN, first)


def test_the_bundle_carries_what_a_browser_needs(setup: Setup, tmp_path: Path  # noqa: F811
                                                 ) -> None:
    _, hub_id = _mirrored(setup)
    served = setup.hub.client.get(f"/api/v1/datasets/{hub_id}/versions/1/proof")
    assert served.status_code == 200, served.get_json()
    bundle = served.get_json()
    assert bundle == setup.hub.client.get(
        f"/api/v1/federation/datasets/{hub_id}/versions/1/proof").get_json()
    assert bundle["format"] == FORMAT
    member = bundle["member"]
    # The member's key as the hub's trust configuration records it, and where to compare it.
    members = setup.hub.client.get(member["trust_configuration"]).get_json()["members"]
    assert member["verifier_key"] == member["current_key"] == members[0]["verifier_key"] \
        == setup.member.state.log.verifier_key
    assert member["url"] == setup.member_url
    # The raw member-signed note with the hub's cosignature line: two signature lines.
    assert member["checkpoint"].startswith(f"{MEMBER_ORIGIN}\n2\n")
    assert len(member["checkpoint"].split("\n\n", 1)[1].strip().split("\n")) == 2
    assert bundle["witness_key"] == setup.hub.client.get("/witness/key").text.strip()
    assert bundle["hub"]["verifier_key"] == setup.hub.client.get("/log/key").text.strip()
    assert json.loads(bundle["hub"]["entry"])["checkpoint"] == member["checkpoint"]
    assert member["metadata"]["title"]["en"] == "Provincial road survey"
    # ndr verify still checks it, every link.
    steps = verify_federated(bundle, NoteVerifier.from_vkey(setup.hub.state.log.verifier_key))
    assert [s.name for s in steps if not s.ok] == [] and len(steps) == 8
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    cli = subprocess.run([sys.executable, "-m", "anchoring.auditor", "verify", str(path),
                          "--key", bundle["hub"]["verifier_key"], "--member-key",
                          setup.member.state.log.verifier_key, "--witness-key",
                          bundle["witness_key"]], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    # The page offers the federated proof, and names the member's key and its own /log/key.
    page = setup.hub.client.get(f"/datasets/{hub_id}?lang=en").get_data(as_text=True)
    assert 'data-federated="1"' in page
    assert setup.member.state.log.verifier_key in page
    assert f"{setup.member_url}/log/key" in page
    # The C2SP text form is this log's own; a federated version has none.
    text = setup.hub.client.get(f"/api/v1/datasets/{hub_id}/versions/1/proof?format=tlog-proof")
    assert text.status_code == 400 and text.content_type == PROBLEM


def test_unknown_entries_are_problems_never_500(setup: Setup) -> None:  # noqa: F811
    member_id, hub_id = _mirrored(setup)
    for prefix in ("/api/v1/datasets", "/api/v1/federation/datasets"):
        for ref, number in ((hub_id, 9), ("no-such-dataset", 1), (member_id, 1),
                            ("x" * 600, 1), ("%00", 1), ("%E4%B8%AD'%22;--", 1),
                            (hub_id, 2**40)):
            answer = setup.hub.client.get(f"{prefix}/{ref}/versions/{number}/proof")
            # 400 for a reference no dataset can have (a NUL byte), else 404; never 500.
            assert answer.status_code in (400, 404), (prefix, ref, number, answer.status_code)
            assert answer.content_type == PROBLEM
            assert answer.get_json()["status"] == answer.status_code
    # A hub dataset that is not federated has no federated proof.
    setup.hub.org("hubdept")
    token = setup.hub.token("hubdept")
    from tests.catalogue.helpers import metadata

    own = setup.hub.client.post("/api/v1/datasets", headers=setup.hub.auth(token), json={
        "metadata": metadata(title={"zh": "枢纽自己的", "en": "The hub's own"})})
    assert own.status_code == 201
    answer = setup.hub.client.get(
        f"/api/v1/federation/datasets/{own.get_json()['id']}/versions/1/proof")
    assert answer.status_code == 404 and answer.content_type == PROBLEM


def test_a_restricted_entry_has_no_public_proof_page(setup: Setup) -> None:  # noqa: F811
    member_id, hub_id = _mirrored(setup)
    r = setup.member.client.patch(f"/api/v1/datasets/{member_id}",
                                  headers=setup.member.auth(setup.token),
                                  json={"visibility": "government"})
    assert r.status_code == 200, r.get_json()
    setup.witness()
    assert Mirror(setup.hub.state).run_member(MEMBER_ORIGIN).restricted == 1
    with setup.hub.state.db.write() as session:
        setup.hub.state.log.sign_checkpoint_if_grown(session)
    for number in (1, 2):
        gone = setup.hub.client.get(f"/api/v1/datasets/{hub_id}/versions/{number}/proof")
        assert gone.status_code == 410, gone.get_data(as_text=True)
        assert gone.content_type == PROBLEM and "metadata" not in gone.get_json()
    assert setup.hub.client.get(f"/datasets/{hub_id}").status_code == 410
    # The federation API still proves the member's leaves, without the metadata (as
    # docs/federation.md says): the restricting leaf is itself evidence.
    kept = setup.hub.client.get(f"/api/v1/federation/datasets/{hub_id}/versions/1/proof")
    assert kept.status_code == 200
    assert kept.get_json()["member"]["metadata"] is None and kept.get_json()["restricted"]


def test_after_a_member_key_rotation_each_bundle_names_the_key_that_signed_it(
        setup: Setup) -> None:  # noqa: F811
    from registry.log_rotation import rotate_log_key

    _, before = _mirrored(setup)
    old_key = setup.member.state.log.verifier_key
    outcome = rotate_log_key(setup.member.state, Path(setup.member.state.settings.log_key_file))
    after_id = setup.publish("After rotation census")
    setup.witness()  # the submitter delivers the rotation after the hub's 403
    assert Mirror(setup.hub.state).run_member(MEMBER_ORIGIN).mirrored == 1
    with setup.hub.state.db.write() as session:
        setup.hub.state.log.sign_checkpoint_if_grown(session)
    hub_key = NoteVerifier.from_vkey(setup.hub.state.log.verifier_key)
    for dataset, signer in ((before, old_key),
                            (hub_dataset_id(MEMBER_ORIGIN, after_id), outcome.new_key)):
        bundle = setup.hub.client.get(f"/api/v1/datasets/{dataset}/versions/1/proof").get_json()
        assert bundle["member"]["verifier_key"] == signer
        assert bundle["member"]["current_key"] == outcome.new_key
        steps = verify_federated(bundle, hub_key)
        assert [s.name for s in steps if not s.ok] == [], steps
