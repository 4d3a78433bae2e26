"""Anchoring on any EVM chain through web3.py (JSON-RPC), with a locally held key.

Transactions are signed here and sent raw, so the node never holds our key and the same code
works against a public chain, a consortium EVM, a local hardhat/ganache node or py-evm in
process. The contract is ``anchoring/contracts/RegistryAnchor.sol``; its ABI and bytecode are
the committed compiler output, loaded from the package.
"""

from __future__ import annotations

import json
import os
import stat
from functools import cache
from pathlib import Path
from typing import Any

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ProviderConnectionError,
    TimeExhausted,
    TransactionNotFound,
    Web3RPCError,
)

from anchoring.anchor_backends.base import (
    AnchoredState,
    AnchorRejected,
    AnchorRequest,
    ChainUnavailable,
    Submission,
    TxState,
    TxStatus,
)
from anchoring.auditor.onchain import origin_id

BACKEND_NAME = "evm"
CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "contracts"
_REVERTS: tuple[type[Exception], ...] = (ContractLogicError, ContractCustomError)
try:  # py-evm in process reports reverts with its own exception
    from eth_tester.exceptions import TransactionFailed

    _REVERTS = (*_REVERTS, TransactionFailed)
except ImportError:  # pragma: no cover - eth-tester is a test-time dependency
    pass
_UNREACHABLE = (requests.RequestException, ProviderConnectionError, ConnectionError, TimeoutError,
                TimeExhausted, OSError)


@cache
def contract_abi() -> list[dict[str, Any]]:
    return json.loads((CONTRACTS_DIR / "RegistryAnchor.abi.json").read_text())


@cache
def contract_bytecode() -> str:
    return "0x" + (CONTRACTS_DIR / "RegistryAnchor.bin").read_text().strip()


def web3_for(rpc_url: str, timeout_seconds: float = 10.0) -> Web3:
    return Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_seconds}))


def load_account(key_file: str | Path) -> LocalAccount:
    """Read the submitter's private key (hex) from a file that only its owner may read."""
    path = Path(key_file)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PermissionError(f"{path} must not be readable by group or others (chmod 600)")
    return Account.from_key(path.read_text().strip())


def write_new_key_file(key_file: str | Path) -> LocalAccount:
    """Create a fresh submitter key, written 0600 from the start (never world-readable)."""
    account = Account.create()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(account.key.hex() + "\n")
    return account


def _send_signed(w3: Web3, account: LocalAccount, tx: dict[str, Any]) -> str:
    tx.setdefault("from", account.address)
    tx.setdefault("nonce", w3.eth.get_transaction_count(account.address, "pending"))
    tx.setdefault("chainId", w3.eth.chain_id)
    if "gasPrice" not in tx and "maxFeePerGas" not in tx:
        tx["gasPrice"] = w3.eth.gas_price
    signed = account.sign_transaction(tx)
    return "0x" + bytes(w3.eth.send_raw_transaction(signed.raw_transaction)).hex()


def deploy_contract(w3: Web3, account: LocalAccount, *, timeout_seconds: float = 120.0) -> str:
    """Deploy RegistryAnchor with ``account`` as owner and first submitter; return its address."""
    factory = w3.eth.contract(abi=contract_abi(), bytecode=contract_bytecode())
    tx = factory.constructor().build_transaction({"from": account.address, "gasPrice": 0})
    tx.pop("gasPrice")
    tx_hash = _send_signed(w3, account, tx)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout_seconds,
                                                  poll_latency=0.1)
    if receipt["status"] != 1 or not receipt["contractAddress"]:
        raise AnchorRejected(f"deployment {tx_hash} failed")
    return str(receipt["contractAddress"])


def set_submitter(w3: Web3, owner: LocalAccount, contract_address: str, submitter: str,
                  allowed: bool = True, *, timeout_seconds: float = 120.0) -> str:
    """Owner grants (or revokes) the right to anchor; returns the transaction hash."""
    contract = w3.eth.contract(address=Web3.to_checksum_address(contract_address),
                               abi=contract_abi())
    tx = contract.functions.setSubmitter(Web3.to_checksum_address(submitter), allowed) \
        .build_transaction({"from": owner.address, "gasPrice": 0})
    tx.pop("gasPrice")
    tx_hash = _send_signed(w3, owner, tx)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout_seconds,
                                                  poll_latency=0.1)
    if receipt["status"] != 1:
        raise AnchorRejected(f"setSubmitter {tx_hash} reverted")
    return tx_hash


class EvmBackend:
    """RegistryAnchor on an EVM chain. ``gas_limit`` skips estimation when set."""

    name = BACKEND_NAME

    def __init__(self, w3: Web3, contract_address: str, account: LocalAccount, *,
                 gas_limit: int | None = None) -> None:
        self.w3 = w3
        self.account = account
        self.gas_limit = gas_limit
        self.contract = Web3.to_checksum_address(contract_address)
        self._contract: Contract = w3.eth.contract(address=self.contract, abi=contract_abi())
        self._chain_id: str | None = None

    def __repr__(self) -> str:  # never show the key
        return f"<EvmBackend contract={self.contract} submitter={self.account.address}>"

    @property
    def chain_id(self) -> str:
        if self._chain_id is None:
            try:
                self._chain_id = str(self.w3.eth.chain_id)
            except _UNREACHABLE as exc:
                raise ChainUnavailable(f"EVM node unreachable: {exc}") from exc
        return self._chain_id

    def _require_contract(self) -> None:
        if not bytes(self.w3.eth.get_code(self.contract)):
            raise ChainUnavailable(f"no contract code at {self.contract} on chain {self.chain_id}")

    def latest_anchored(self, origin: str) -> AnchoredState | None:
        try:
            self._require_contract()
            size, root, checkpoint_hash = self._contract.functions.latest(origin_id(origin)).call()
        except _UNREACHABLE as exc:
            raise ChainUnavailable(f"EVM node unreachable: {exc}") from exc
        if size == 0:
            return None
        return AnchoredState(int(size), bytes(root), bytes(checkpoint_hash))

    def submit(self, request: AnchorRequest) -> Submission:
        call = self._contract.functions.anchor(origin_id(request.origin), request.size,
                                               request.root, request.checkpoint_sha256)
        try:
            self._require_contract()
            params: dict[str, Any] = {"from": self.account.address, "gasPrice": 0}
            if self.gas_limit is not None:
                params["gas"] = self.gas_limit
            tx = call.build_transaction(params)
            tx.pop("gasPrice")
            return Submission(_send_signed(self.w3, self.account, tx))
        except _REVERTS as exc:
            raise AnchorRejected(f"contract refused size {request.size}: {exc}") from exc
        except Web3RPCError as exc:
            raise AnchorRejected(f"node refused the transaction: {exc}") from exc
        except _UNREACHABLE as exc:
            raise ChainUnavailable(f"EVM node unreachable: {exc}") from exc

    def status(self, tx_id: str) -> TxStatus:
        try:
            return self._status(tx_id)
        except _UNREACHABLE as exc:
            raise ChainUnavailable(f"EVM node unreachable: {exc}") from exc

    def _status(self, tx_id: str) -> TxStatus:
        try:
            receipt = self.w3.eth.get_transaction_receipt(tx_id)  # type: ignore[arg-type]
        except TransactionNotFound:
            receipt = None
        if receipt is None:
            try:
                self.w3.eth.get_transaction(tx_id)  # type: ignore[arg-type]
            except TransactionNotFound:
                return TxStatus(TxState.MISSING, detail="the node does not know this transaction")
            return TxStatus(TxState.PENDING)
        height = int(receipt["blockNumber"])
        block_hash = "0x" + bytes(receipt["blockHash"]).hex()
        canonical = self.w3.eth.get_block(height)
        if bytes(canonical["hash"]) != bytes(receipt["blockHash"]):  # type: ignore[arg-type]
            return TxStatus(TxState.MISSING, height, block_hash,
                            detail="the block of this transaction is no longer canonical")
        confirmations = int(self.w3.eth.block_number) - height + 1
        if receipt["status"] != 1:
            return TxStatus(TxState.FAILED, height, block_hash, confirmations,
                            detail="transaction reverted")
        return TxStatus(TxState.INCLUDED, height, block_hash, confirmations)
