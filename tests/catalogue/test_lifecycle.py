"""Visibility, drafts, history, idempotency and proofs through the public HTTP API."""

from __future__ import annotations

import json
import threading

from tests.catalogue.helpers import counts, metadata


def _publish(registry, headers, **body):  # type: ignore[no-untyped-def]
    r = registry.client.post("/api/v1/datasets", json={"metadata": metadata(), **body},
                             headers=headers)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_government_only_entries_need_a_signed_in_user(registry) -> None:  # type: ignore[no-untyped-def]
    registry.org("mot")
    registry.org("moe")
    editor = registry.auth(registry.token("mot"))
    secret = _publish(registry, editor, visibility="government")
    assert secret["log"]["index"] == 0  # logged (hash only is public via the log)
    assert registry.client.get(f"/api/v1/datasets/{secret['id']}").status_code == 404
    other_department = registry.auth(registry.token("moe", "member"))
    seen = registry.client.get(f"/api/v1/datasets/{secret['id']}", headers=other_department)
    assert seen.status_code == 200
    assert registry.client.get(f"/api/v1/datasets/{secret['id']}/versions/1/proof"
                               ).status_code == 404


def test_drafts_are_seen_only_by_their_organisation(registry) -> None:  # type: ignore[no-untyped-def]
    registry.org("mot")
    registry.org("moe")
    editor = registry.auth(registry.token("mot"))
    draft = _publish(registry, editor, state="draft")
    assert draft["log"] is None  # drafts are not logged
    assert counts(registry)[1] == 0
    assert registry.client.get(f"/api/v1/datasets/{draft['id']}").status_code == 404
    stranger = registry.auth(registry.token("moe", "admin"))
    assert registry.client.get(f"/api/v1/datasets/{draft['id']}",
                               headers=stranger).status_code == 404
    own = registry.auth(registry.token("mot", "member"))
    assert registry.client.get(f"/api/v1/datasets/{draft['id']}", headers=own).status_code == 200
    published = registry.client.patch(f"/api/v1/datasets/{draft['id']}",
                                      json={"state": "published"}, headers=editor).get_json()
    assert published["change"] == "dataset.published" and published["log"]["index"] == 0
    assert registry.client.get(f"/api/v1/datasets/{draft['id']}").status_code == 200


def test_a_draft_on_top_of_a_published_version_stays_private(registry) -> None:  # type: ignore[no-untyped-def]
    registry.org("mot")
    editor = registry.auth(registry.token("mot"))
    v1 = _publish(registry, editor)
    draft = registry.client.patch(f"/api/v1/datasets/{v1['id']}",
                                  json={"state": "draft",
                                        "metadata": {"title": {"zh": "草稿标题"}}},
                                  headers=editor).get_json()
    assert draft["version"] == 2 and draft["log"] is None
    public = registry.client.get(f"/api/v1/datasets/{v1['id']}").get_json()
    assert public["version"] == 1 and public["metadata"]["title"]["zh"] == "全国公路交通流量统计"
    history = registry.client.get(f"/api/v1/datasets/{v1['id']}/versions").get_json()
    assert [v["version"] for v in history["items"]] == [1]
    mine = registry.client.get(f"/api/v1/datasets/{v1['id']}", headers=editor).get_json()
    assert mine["version"] == 2 and mine["state"] == "draft"


def test_unchanged_patch_records_nothing(registry) -> None:  # type: ignore[no-untyped-def]
    registry.org("mot")
    editor = registry.auth(registry.token("mot"))
    v1 = _publish(registry, editor)
    before = counts(registry)
    again = registry.client.patch(f"/api/v1/datasets/{v1['id']}",
                                  json={"metadata": {"keywords": metadata()["keywords"]}},
                                  headers=editor)
    assert again.status_code == 200 and again.get_json()["version"] == 1
    assert counts(registry) == before


def test_withdrawn_is_a_version_and_history_stays(registry) -> None:  # type: ignore[no-untyped-def]
    registry.org("mot")
    editor = registry.auth(registry.token("mot"))
    v1 = _publish(registry, editor)
    gone = registry.client.delete(f"/api/v1/datasets/{v1['id']}?reason=superseded",
                                  headers=editor).get_json()
    assert gone["change"] == "dataset.withdrawn" and gone["note"] == "superseded"
    assert registry.client.get(f"/api/v1/datasets/{v1['id']}/versions/1").status_code == 200
    again = registry.client.delete(f"/api/v1/datasets/{v1['id']}", headers=editor)
    assert again.status_code == 409
    needs_state = registry.client.patch(f"/api/v1/datasets/{v1['id']}",
                                        json={"metadata": {"keywords": ["z"]}}, headers=editor)
    assert needs_state.status_code == 409
    back = registry.client.patch(f"/api/v1/datasets/{v1['id']}", json={"state": "published"},
                                 headers=editor).get_json()
    assert back["change"] == "dataset.published" and back["version"] == 3


def test_idempotency_key_replays_and_rejects_reuse(registry) -> None:  # type: ignore[no-untyped-def]
    registry.org("mot")
    headers = {**registry.auth(registry.token("mot")), "Idempotency-Key": "import-42"}
    first = registry.client.post("/api/v1/datasets", json={"metadata": metadata()},
                                 headers=headers)
    before = counts(registry)
    second = registry.client.post("/api/v1/datasets", json={"metadata": metadata()},
                                  headers=headers)
    assert second.status_code == 201 and second.headers["Idempotency-Replayed"] == "true"
    assert second.get_json() == first.get_json()
    assert counts(registry) == before
    other = registry.client.post("/api/v1/datasets",
                                 json={"metadata": metadata(keywords=["other"])},
                                 headers=headers)
    assert other.status_code == 422
    assert other.get_json()["errors"][0]["name"] == "Idempotency-Key"


def test_concurrent_publishes_get_gap_free_leaves(registry) -> None:  # type: ignore[no-untyped-def]
    registry.org("mot")
    headers = registry.auth(registry.token("mot"))
    indexes: list[int] = []
    errors: list[str] = []

    def publish(n: int) -> None:
        client = registry.app.test_client()
        for i in range(5):
            r = client.post("/api/v1/datasets",
                            json={"metadata": metadata(keywords=[f"t{n}-{i}"])}, headers=headers)
            if r.status_code != 201:
                errors.append(r.get_data(as_text=True))
            else:
                indexes.append(r.get_json()["log"]["index"])

    threads = [threading.Thread(target=publish, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(indexes) == list(range(20))


def test_proof_bundle_verifies_offline_and_tampering_fails(registry, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from anchoring.auditor.cli import main as auditor

    registry.org("mot")
    editor = registry.auth(registry.token("mot"))
    for i in range(5):
        _publish(registry, editor, slug=f"traffic-{i}")
    with registry.state.db.read() as session:
        assert registry.state.log.latest_checkpoint(session) is None
    # No checkpoint covers the leaf yet: the request signs one rather than failing.
    bundle = registry.client.get("/api/v1/datasets/traffic-3/versions/1/proof").get_json()
    key = registry.client.get("/log/key").get_data(as_text=True).strip()
    assert bundle["index"] == 3 and bundle["tree_size"] == 5
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    assert auditor(["verify", str(path), "--key", key]) == 0

    text = registry.client.get("/api/v1/datasets/traffic-3/versions/1/proof?format=tlog-proof")
    assert text.status_code == 200
    assert text.get_data(as_text=True).startswith("c2sp.org/tlog-proof@v1")
    tlog_path = tmp_path / "proof.txt"
    tlog_path.write_bytes(text.get_data())
    assert auditor(["verify", str(tlog_path), "--key", key]) == 0

    tampered = dict(bundle, metadata=dict(bundle["metadata"], keywords=["altered"]))
    path.write_text(json.dumps(tampered))
    capsys.readouterr()
    assert auditor(["verify", str(path), "--key", key]) != 0
    assert "metadata" in capsys.readouterr().out.lower()


def test_search_results_show_the_published_version_not_a_pending_draft(registry) -> None:  # type: ignore[no-untyped-def]
    registry.org("mot")
    editor = registry.auth(registry.token("mot"))
    v1 = _publish(registry, editor, slug="published-one")
    registry.client.patch(f"/api/v1/datasets/{v1['id']}", headers=editor, json={
        "state": "draft", "metadata": {"title": {"zh": "尚未发布的草稿标题"}}})
    for url in ("/api/v1/datasets?q=交通", "/api/3/action/package_search?q=交通"):
        body = registry.client.get(url).get_json()
        items = body["items"] if "items" in body else body["result"]["results"]
        assert len(items) == 1
        title = items[0]["title"]
        assert (title["zh"] if isinstance(title, dict) else title) == "全国公路交通流量统计"
