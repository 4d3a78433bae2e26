"""The whole path on a real EVM node: publish → checkpoint → anchor on ganache → proof bundle
→ `ndr verify --rpc`, which asks the chain itself whether it holds the anchored root."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.catalogue.helpers import metadata

from .conftest import DEPLOYER_KEY, GanacheNode

pytestmark = pytest.mark.evm


def test_bundle_anchored_on_ganache_verifies_on_chain(ganache: GanacheNode, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from eth_account import Account

    from anchoring.anchor_backends.evm import deploy_contract, web3_for
    from anchoring.auditor.cli import main as auditor
    from registry.bootstrap import build_anchor_worker
    from tests.conftest import build_registry

    key_file = tmp_path / "submitter.key"
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(DEPLOYER_KEY + "\n")
    contract = deploy_contract(web3_for(ganache.url), Account.from_key(DEPLOYER_KEY))
    for name, value in (("NDR_ANCHOR_BACKEND", "evm"), ("NDR_EVM_RPC_URL", ganache.url),
                        ("NDR_EVM_CONTRACT", contract), ("NDR_EVM_KEY_FILE", str(key_file)),
                        ("NDR_ANCHOR_EPOCH_SECONDS", "0"), ("NDR_ANCHOR_CONFIRMATIONS", "1")):
        monkeypatch.setenv(name, value)

    registry = build_registry(f"sqlite:///{tmp_path / 'registry.db'}", tmp_path / "var")
    try:
        registry.org("mot")
        editor = registry.auth(registry.token("mot"))
        for i in range(3):
            r = registry.client.post("/api/v1/datasets", headers=editor,
                                     json={"slug": f"road-{i}", "metadata": metadata()})
            assert r.status_code == 201
        with registry.state.db.write() as session:
            registry.state.log.sign_checkpoint_if_grown(session)
        worker = build_anchor_worker(registry.state)
        for _ in range(5):  # submit, then confirm (ganache mines one block per transaction)
            worker.run_once()
            ganache.mine()
            anchors = registry.client.get("/api/v1/anchors?status=final").get_json()["items"]
            if anchors:
                break
        assert anchors and anchors[0]["backend"] == "evm" and anchors[0]["size"] == 3

        bundle = registry.client.get("/api/v1/datasets/road-1/versions/1/proof").get_json()
        assert bundle["anchors"][0]["tx_hash"] == anchors[0]["tx_hash"]
        key = registry.client.get("/log/key").get_data(as_text=True).strip()
        path = tmp_path / "bundle.json"
        path.write_text(json.dumps(bundle))
        capsys.readouterr()
        assert auditor(["verify", str(path), "--key", key, "--rpc", ganache.url]) == 0
        assert "confirmed on chain" in capsys.readouterr().out

        # A receipt naming a transaction the chain never saw fails the on-chain check.
        forged = json.loads(json.dumps(bundle))
        forged["anchors"][0]["tx_hash"] = "0x" + "00" * 32
        path.write_text(json.dumps(forged))
        assert auditor(["verify", str(path), "--key", key, "--rpc", ganache.url]) != 0
    finally:
        registry.state.db.dispose()
