"""RegistryAnchor on py-evm (eth-tester, in process), plus the build reproducibility check."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

import pytest
from eth_account import Account
from eth_tester.exceptions import TransactionFailed
from web3 import EthereumTesterProvider, Web3
from web3.exceptions import ContractCustomError, ContractLogicError

from anchoring.anchor_backends.evm import contract_abi, deploy_contract, set_submitter
from anchoring.auditor import onchain

from .conftest import REPO, missing_tool

pytestmark = pytest.mark.evm

REVERTS = (ContractLogicError, ContractCustomError, TransactionFailed)
ORIGIN = "registry.example.gov.cn/log"


@pytest.fixture
def chain():  # type: ignore[no-untyped-def]
    w3 = Web3(EthereumTesterProvider())
    owner = Account.create()
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": owner.address,
                             "value": 10**20})
    address = deploy_contract(w3, owner)
    return w3, owner, w3.eth.contract(address=address, abi=contract_abi())


def transact(w3: Web3, account, call) -> dict:  # type: ignore[no-untyped-def]
    tx = call.build_transaction({"from": account.address, "nonce":
                                 w3.eth.get_transaction_count(account.address),
                                 "gasPrice": w3.eth.gas_price})
    signed = account.sign_transaction(tx)
    return dict(w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction)))


def test_anchor_and_read_back(chain) -> None:  # type: ignore[no-untyped-def]
    w3, owner, contract = chain
    key = Web3.keccak(text=ORIGIN)
    root, ckpt = hashlib.sha256(b"root5").digest(), hashlib.sha256(b"note5").digest()
    assert contract.functions.latest(key).call() == [0, bytes(32), bytes(32)] or \
        tuple(contract.functions.latest(key).call()) == (0, bytes(32), bytes(32))
    receipt = transact(w3, owner, contract.functions.anchor(key, 5, root, ckpt))
    assert receipt["status"] == 1
    assert tuple(contract.functions.latest(key).call()) == (5, root, ckpt)
    assert tuple(contract.functions.rootAt(key, 5).call()) == (root, ckpt)
    assert tuple(contract.functions.rootAt(key, 4).call()) == (bytes(32), bytes(32))
    events = contract.events.Anchored().process_receipt(receipt)
    assert [(e.args.origin, e.args.size, e.args.root, e.args.checkpointHash)
            for e in events] == [(key, 5, root, ckpt)]
    other = Web3.keccak(text="another.example/log")
    assert next(iter(contract.functions.latest(other).call())) == 0


def test_sizes_must_strictly_increase(chain) -> None:  # type: ignore[no-untyped-def]
    w3, owner, contract = chain
    key = Web3.keccak(text=ORIGIN)
    root = hashlib.sha256(b"r").digest()
    transact(w3, owner, contract.functions.anchor(key, 7, root, root))
    for size in (7, 6, 0):
        with pytest.raises(REVERTS):
            contract.functions.anchor(key, size, root, root).call({"from": owner.address})
    with pytest.raises(REVERTS):
        contract.functions.anchor(key, 8, bytes(32), root).call({"from": owner.address})
    assert next(iter(contract.functions.latest(key).call())) == 7


def test_only_submitters_write_and_owner_manages_them(chain) -> None:  # type: ignore[no-untyped-def]
    w3, owner, contract = chain
    key = Web3.keccak(text=ORIGIN)
    root = hashlib.sha256(b"r").digest()
    stranger = Account.create()
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": stranger.address,
                             "value": 10**19})
    with pytest.raises(REVERTS):
        contract.functions.anchor(key, 1, root, root).call({"from": stranger.address})
    with pytest.raises(REVERTS):
        contract.functions.setSubmitter(stranger.address, True).call({"from": stranger.address})
    set_submitter(w3, owner, contract.address, stranger.address, True)
    assert contract.functions.isSubmitter(stranger.address).call() is True
    assert transact(w3, stranger, contract.functions.anchor(key, 1, root, root))["status"] == 1
    set_submitter(w3, owner, contract.address, stranger.address, False)
    with pytest.raises(REVERTS):
        contract.functions.anchor(key, 2, root, root).call({"from": stranger.address})
    assert contract.functions.owner().call() == owner.address


def test_auditor_constants_are_keccak() -> None:
    assert bytes(Web3.keccak(text="rootAt(bytes32,uint64)"))[:4] == onchain.SELECTOR_ROOT_AT
    assert bytes(Web3.keccak(text="latest(bytes32)"))[:4] == onchain.SELECTOR_LATEST
    assert bytes(
        Web3.keccak(text="Anchored(bytes32,uint64,bytes32,bytes32)")) == onchain.ANCHORED_TOPIC
    for data in (b"", b"abc", b"x" * 135, b"x" * 136, b"y" * 1000, ORIGIN.encode()):
        assert onchain.keccak256(data) == bytes(Web3.keccak(data))
    # The ABI agrees with the hand-written calldata layout.
    names = {item["name"] for item in contract_abi() if item.get("type") == "function"}
    assert {"anchor", "latest", "rootAt", "setSubmitter", "transferOwnership"} <= names


def test_recompiling_reproduces_committed_abi_and_bytecode() -> None:
    if shutil.which("node") is None or not (REPO / "node_modules" / "solc").exists():
        missing_tool("node or the npm solc package is absent: run `npm ci`")
    package = json.loads((REPO / "package.json").read_text())
    pinned = package["devDependencies"]["solc"]
    assert pinned[0].isdigit(), f"solc must be pinned exactly, not {pinned!r}"
    result = subprocess.run(["node", "anchoring/contracts/build.mjs", "--check"], cwd=REPO,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "NODE_OPTIONS": ""})
    assert result.returncode == 0, result.stderr
