"""The ChainMaker backend against the stand-in RpcNode server: a PROTOCOL test, not a chain test.

The official SDK (chainmaker==3.0.6) builds, signs and sends real transactions over mutual TLS;
the stand-in checks signer, signature, chain id, contract, method and calldata, and executes
the calldata against the real RegistryAnchor bytecode in py-evm.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from chainmaker.chain_client import ChainClient
from eth_abi import decode
from sqlalchemy import select
from web3 import Web3

from anchoring.anchor_backends import AnchorConfig, AnchorRequest, TxState, make_anchor_backend
from anchoring.anchor_backends.chainmaker import ChainMakerBackend
from anchoring.anchor_store import Anchor, list_anchors
from anchoring.anchor_worker import AnchorWorker
from anchoring.auditor.onchain import origin_id
from anchoring.chainmaker_standin.pki import TestPki, make_test_pki, sdk_config
from anchoring.chainmaker_standin.server import StandInNode, StandInServer

from .conftest import CheckpointFeed, wait_until

CHAIN_ID = "chain1"
CONTRACT = "registry_anchor"


@pytest.fixture
def pki(tmp_path: Path) -> TestPki:
    return make_test_pki(tmp_path / "pki")


@pytest.fixture
def standin(pki: TestPki) -> Iterator[StandInServer]:
    node = StandInNode(CHAIN_ID, CONTRACT, pki.ca_cert.read_bytes())
    server = StandInServer(node, pki.server_cert, pki.server_key, pki.ca_cert)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def backend(pki: TestPki, standin: StandInServer) -> Iterator[ChainMakerBackend]:
    backend = ChainMakerBackend.from_sdk_config(sdk_config(pki, standin.address, CHAIN_ID),
                                                CONTRACT)
    yield backend
    backend.close()


def test_sdk_transactions_are_signed_checked_and_executed(backend, standin, feed) -> None:  # type: ignore[no-untyped-def]
    checkpoint = feed.grow(12)
    request = AnchorRequest.from_checkpoint_note(checkpoint.origin, 12, checkpoint.root,
                                                 checkpoint.note)
    assert backend.latest_anchored(feed.origin) is None
    submission = backend.submit(request)
    assert standin.node.rejected == []
    invoke = standin.node.received[-1]
    assert (invoke.tx_id, invoke.contract_name, invoke.method) == (
        submission.tx_id, CONTRACT, invoke.calldata[:4].hex())
    assert invoke.method == bytes(Web3.keccak(text="anchor(bytes32,uint64,bytes32,bytes32)"))[
        :4].hex()
    args = decode(["bytes32", "uint64", "bytes32", "bytes32"], invoke.calldata[4:])
    assert args == (origin_id(feed.origin), 12, checkpoint.root,
                    hashlib.sha256(checkpoint.note.encode()).digest())
    status = backend.status(submission.tx_id)
    assert status.state is TxState.INCLUDED and status.block_height == 1
    assert status.confirmations == 1
    latest = backend.latest_anchored(feed.origin)
    assert latest is not None and (latest.size, latest.root) == (12, checkpoint.root)
    # A non-increasing size is executed and fails in the contract; the backend sees FAILED.
    failed = backend.submit(request)
    assert backend.status(failed.tx_id).state is TxState.FAILED
    assert backend.status("0" * 64).state is TxState.MISSING


def test_forged_signature_is_refused(pki, standin) -> None:  # type: ignore[no-untyped-def]
    client = ChainClient.from_conf(sdk_config(pki, standin.address, CHAIN_ID))
    try:
        selector = bytes(Web3.keccak(text="anchor(bytes32,uint64,bytes32,bytes32)"))[:4].hex()
        payload = client._payload_builder.create_invoke_payload(  # the SDK's own builder
            CONTRACT, selector, {"data": selector})
        signed = client._generate_tx_request(payload)
        signed.sender.signature = signed.sender.signature[:-2] + b"\x00\x00"
        response = client._get_client().SendRequest(signed, timeout=10)
        assert response.code != 0 and "signature" in response.message
        honest = client._generate_tx_request(payload)  # the same payload, properly signed
        assert client._get_client().SendRequest(honest, timeout=10).code == 0
    finally:
        client.stop()
    assert standin.node.rejected == [
        "tx verify failed: sender signature does not verify over the payload"]
    assert [tx.tx_id for tx in standin.node.received] == [payload.tx_id]


def test_worker_anchors_through_chainmaker_and_survives_an_outage(sqlite_db, pki, standin,
                                                                   feed: CheckpointFeed) -> None:  # type: ignore[no-untyped-def]
    db = sqlite_db
    config = AnchorConfig(backend="chainmaker", chainmaker_contract=CONTRACT,
                          chainmaker_sdk_config="unused")
    assert config.backend == "chainmaker"
    backend = ChainMakerBackend.from_sdk_config(sdk_config(pki, standin.address, CHAIN_ID),
                                                CONTRACT)
    worker = AnchorWorker(db.write, feed.latest, backend, epoch_seconds=0,
                          backoff_initial_seconds=0.0)
    try:
        feed.grow(3)
        assert worker.run_once().finalised == [3]
        standin.stop()
        feed.grow(4)
        report = worker.run_once()
        assert report.chain_error is not None and report.submitted_size is None
        standin.start()  # same port, same chain state
        reports = []

        def drained() -> bool:  # gRPC reconnects with its own backoff: poll, do not sleep
            reports.append(worker.run_once())
            return 7 in reports[-1].finalised

        wait_until(drained, 30, "the anchor of size 7", interval=0.2)
        assert [r.submitted_size for r in reports if r.submitted_size] == [7]
    finally:
        backend.close()
    with db.read() as session:
        rows = [(a.size, a.status, a.backend, a.chain_id, a.contract)
                for a in session.scalars(select(Anchor).order_by(Anchor.id))]
        receipts = list_anchors(session)
    assert rows == [(3, "final", "chainmaker", CHAIN_ID, CONTRACT),
                    (7, "final", "chainmaker", CHAIN_ID, CONTRACT)]
    assert receipts[0]["origin_id"] == "0x" + origin_id(feed.origin).hex()


def test_factory_reads_the_sdk_config_file(tmp_path, pki, standin) -> None:  # type: ignore[no-untyped-def]
    import yaml

    path = tmp_path / "sdk_config.yml"
    path.write_text(yaml.safe_dump(sdk_config(pki, standin.address, CHAIN_ID)))
    backend = make_anchor_backend(AnchorConfig.from_env({
        "NDR_ANCHOR_BACKEND": "chainmaker", "NDR_CHAINMAKER_SDK_CONFIG": str(path),
        "NDR_CHAINMAKER_CONTRACT": CONTRACT}))
    try:
        assert (backend.name, backend.chain_id, backend.contract) == ("chainmaker", CHAIN_ID,
                                                                       CONTRACT)
        assert backend.latest_anchored("nothing.anchored/log") is None
    finally:
        backend.close()  # type: ignore[attr-defined]
