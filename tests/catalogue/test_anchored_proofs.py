"""Publishing → checkpoint → anchor (local journal) → the proof bundle carries the receipt."""

from __future__ import annotations

import json

from tests.catalogue.helpers import metadata


def test_bundle_carries_the_anchor_and_api_lists_it(registry, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from anchoring.auditor.cli import main as auditor
    from registry.bootstrap import build_anchor_worker

    monkeypatch.setenv("NDR_ANCHOR_BACKEND", "local")
    monkeypatch.setenv("NDR_ANCHOR_EPOCH_SECONDS", "0")  # anchor at once, no epoch wait
    monkeypatch.setenv("NDR_ANCHOR_JOURNAL_KEY_FILE", str(tmp_path / "journal.key"))
    registry.org("mot")
    editor = registry.auth(registry.token("mot"))
    for i in range(3):
        r = registry.client.post("/api/v1/datasets",
                                 json={"metadata": metadata(), "slug": f"d{i}"}, headers=editor)
        assert r.status_code == 201
    with registry.state.db.write() as session:
        registry.state.log.sign_checkpoint_if_grown(session)
    worker = build_anchor_worker(registry.state)
    worker.run_once()
    anchors = registry.client.get("/api/v1/anchors").get_json()["items"]
    assert [(a["size"], a["status"], a["backend"]) for a in anchors] == [
        (3, "final", "local-journal")]
    bundle = registry.client.get("/api/v1/datasets/d1/versions/1/proof").get_json()
    assert bundle["anchors"][0]["size"] == 3
    assert bundle["anchors"][0]["root"] == anchors[0]["root"]
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    key = registry.client.get("/log/key").get_data(as_text=True).strip()
    assert auditor(["verify", str(path), "--key", key]) == 0
    bad = registry.client.get("/api/v1/anchors?status=lost")
    assert bad.status_code == 400 and bad.get_json()["errors"][0]["name"] == "status"


def test_bundle_anchor_carries_a_consistency_proof_to_the_anchored_root(registry, tmp_path,
                                                                        monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import base64

    from anchoring import tlog
    from registry.bootstrap import build_anchor_worker

    monkeypatch.setenv("NDR_ANCHOR_BACKEND", "local")
    monkeypatch.setenv("NDR_ANCHOR_EPOCH_SECONDS", "0")  # anchor at once, no epoch wait
    monkeypatch.setenv("NDR_ANCHOR_JOURNAL_KEY_FILE", str(tmp_path / "journal.key"))
    registry.org("mot")
    editor = registry.auth(registry.token("mot"))
    registry.client.post("/api/v1/datasets", json={"metadata": metadata(), "slug": "first"},
                         headers=editor)
    bundle_before = registry.client.get("/api/v1/datasets/first/versions/1/proof").get_json()
    assert bundle_before["tree_size"] == 1 and bundle_before["anchors"] == []
    for i in range(4):
        registry.client.post("/api/v1/datasets", json={"metadata": metadata(),
                                                       "slug": f"later-{i}"}, headers=editor)
    with registry.state.db.write() as session:
        registry.state.log.sign_checkpoint_if_grown(session)
    build_anchor_worker(registry.state).run_once()
    bundle = registry.client.get("/api/v1/datasets/first/versions/1/proof").get_json()
    anchor = bundle["anchors"][0]
    assert (bundle["tree_size"], anchor["size"]) == (1, 5)
    consistency = anchor["consistency"]
    assert (consistency["old_size"], consistency["new_size"]) == (1, 5)
    old_root = tlog.root_from_inclusion_proof(
        bundle["index"], bundle["tree_size"], base64.b64decode(bundle["leaf_hash"]),
        [base64.b64decode(h) for h in bundle["inclusion_path"]])
    tlog.check_tree([base64.b64decode(h) for h in consistency["proof"]], 5,
                    base64.b64decode(anchor["root"]), 1, old_root)


def test_verify_rejects_an_anchor_whose_root_does_not_extend_the_checkpoint(
        registry, tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import base64

    from anchoring.auditor.cli import main as auditor
    from registry.bootstrap import build_anchor_worker

    monkeypatch.setenv("NDR_ANCHOR_BACKEND", "local")
    monkeypatch.setenv("NDR_ANCHOR_EPOCH_SECONDS", "0")
    monkeypatch.setenv("NDR_ANCHOR_JOURNAL_KEY_FILE", str(tmp_path / "journal.key"))
    registry.org("mot")
    editor = registry.auth(registry.token("mot"))
    registry.client.post("/api/v1/datasets", json={"metadata": metadata(), "slug": "a"},
                         headers=editor)
    registry.client.get("/api/v1/datasets/a/versions/1/proof")  # checkpoint at size 1
    for i in range(3):
        registry.client.post("/api/v1/datasets", json={"metadata": metadata(), "slug": f"b{i}"},
                             headers=editor)
    with registry.state.db.write() as session:
        registry.state.log.sign_checkpoint_if_grown(session)
    build_anchor_worker(registry.state).run_once()
    bundle = registry.client.get("/api/v1/datasets/a/versions/1/proof").get_json()
    key = registry.client.get("/log/key").get_data(as_text=True).strip()
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    assert auditor(["verify", str(path), "--key", key]) == 0
    assert "anchor consistency" in capsys.readouterr().out
    forged = json.loads(json.dumps(bundle))
    forged["anchors"][0]["root"] = base64.b64encode(b"\x01" * 32).decode()
    path.write_text(json.dumps(forged))
    assert auditor(["verify", str(path), "--key", key]) != 0
    assert "anchor consistency" in capsys.readouterr().out
