"""Anchoring on ChainMaker through its official Python SDK (chainmaker==3.0.6).

ChainMaker runs Solidity contracts in its EVM runtime, so this backend drives the very same
RegistryAnchor bytecode as the EVM backend. The SDK's EVM convention: a contract is called by
its ChainMaker contract name; ``invoke_contract``/``query_contract`` given a list of
``{abi_type: value}`` dicts turn the method into its 4-byte selector (hex) and pass the full
ABI calldata (selector + arguments, hex) as the single parameter ``data``; the node returns the
raw ABI-encoded output in ``contract_result.result``.

ChainMaker's consensus (TBFT/Raft) is final once a block is committed, so an included
transaction normally needs one confirmation; the count is still reported from block heights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anchoring.anchor_backends.base import (
    AnchoredState,
    AnchorRejected,
    AnchorRequest,
    ChainUnavailable,
    Submission,
    TxState,
    TxStatus,
)
from anchoring.auditor.onchain import decode_words, origin_id

BACKEND_NAME = "chainmaker"
SUCCESS = 0


def _sdk_errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """(unreachable, refused) exception classes of the SDK, imported only when used."""
    from chainmaker import exceptions

    unreachable = (exceptions.RpcConnectError, exceptions.GetTxTimeoutError,
                   exceptions.RpcRequestTimeout, exceptions.Timeout, ConnectionError)
    return unreachable, (exceptions.RequestError,)


class ChainMakerBackend:
    name = BACKEND_NAME

    def __init__(self, client: Any, contract_name: str) -> None:
        """``client`` is a ``chainmaker.chain_client.ChainClient``."""
        self.client = client
        self.contract = contract_name
        self.chain_id = str(client.chain_id)
        self._unreachable, self._refused = _sdk_errors()

    def __repr__(self) -> str:
        return f"<ChainMakerBackend chain={self.chain_id} contract={self.contract}>"

    @classmethod
    def from_sdk_config(cls, sdk_config: str | Path | dict[str, Any],
                        contract_name: str) -> ChainMakerBackend:
        """Build from an SDK config (the YAML file ChainMaker's tools generate, or a dict)."""
        from chainmaker.chain_client import ChainClient

        client = ChainClient.from_conf(sdk_config if isinstance(sdk_config, dict)
                                       else str(sdk_config))
        return cls(client, contract_name)

    def close(self) -> None:
        self.client.stop()

    def latest_anchored(self, origin: str) -> AnchoredState | None:
        try:
            response = self.client.query_contract(
                self.contract, "latest", [{"bytes32": origin_id(origin)}])
        except self._unreachable as exc:
            raise ChainUnavailable(f"ChainMaker node unreachable: {exc}") from exc
        except self._refused as exc:
            raise ChainUnavailable(f"ChainMaker query failed: {exc}") from exc
        if response.code != SUCCESS or response.contract_result.code != SUCCESS:
            raise ChainUnavailable(f"ChainMaker query failed: {response.message} "
                                   f"{response.contract_result.message}")
        size_word, root, checkpoint_hash = decode_words(bytes(response.contract_result.result), 3)
        size = int.from_bytes(size_word, "big")
        return AnchoredState(size, root, checkpoint_hash) if size else None

    def submit(self, request: AnchorRequest) -> Submission:
        from chainmaker.utils.common import gen_rand_tx_id

        tx_id = gen_rand_tx_id()
        params = [{"bytes32": origin_id(request.origin)}, {"uint64": request.size},
                  {"bytes32": request.root}, {"bytes32": request.checkpoint_sha256}]
        try:
            response = self.client.invoke_contract(self.contract, "anchor", params, tx_id=tx_id,
                                                   with_sync_result=False)
        except self._unreachable as exc:
            raise ChainUnavailable(f"ChainMaker node unreachable: {exc}") from exc
        except self._refused as exc:
            raise AnchorRejected(f"ChainMaker refused the transaction: {exc}") from exc
        if response.code != SUCCESS:
            raise AnchorRejected(f"ChainMaker refused the transaction: {response.message}")
        return Submission(tx_id)

    def status(self, tx_id: str) -> TxStatus:
        try:
            info = self.client.get_tx_by_tx_id(tx_id)
        except self._unreachable as exc:
            raise ChainUnavailable(f"ChainMaker node unreachable: {exc}") from exc
        except self._refused as exc:
            return TxStatus(TxState.MISSING, detail=f"node does not know the transaction: {exc}")
        try:
            head = int(self.client.get_current_block_height())
        except self._unreachable as exc:
            raise ChainUnavailable(f"ChainMaker node unreachable: {exc}") from exc
        height = int(info.block_height)
        block_hash = bytes(info.block_hash).hex()
        result = info.transaction.result
        confirmations = max(0, head - height + 1)
        if result.code != SUCCESS or result.contract_result.code != SUCCESS:
            return TxStatus(TxState.FAILED, height, block_hash, confirmations,
                            detail=f"{result.message} {result.contract_result.message}".strip())
        return TxStatus(TxState.INCLUDED, height, block_hash, confirmations)
