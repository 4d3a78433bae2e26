"""Where signed checkpoints are anchored: configuration and the factory that picks a backend.

The interface every backend implements, and the value types they answer in, are in
:mod:`anchoring.anchor_backends.base` (re-exported here for callers).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from anchoring.anchor_backends.base import (
    AnchorBackend,
    AnchoredState,
    AnchorRejected,
    AnchorRequest,
    ChainUnavailable,
    Submission,
    TxState,
    TxStatus,
    WriteSessionFactory,
    checkpoint_sha256,
)

__all__ = [
    "BACKEND_KINDS", "AnchorBackend", "AnchorConfig", "AnchorRejected", "AnchorRequest",
    "AnchoredState", "ChainUnavailable", "Submission", "TxState", "TxStatus",
    "WriteSessionFactory", "checkpoint_sha256", "make_anchor_backend",
]


BACKEND_KINDS = ("local", "evm", "chainmaker")


@dataclass(frozen=True)
class AnchorConfig:
    """Anchoring settings, normally read from the environment (see docs/anchoring.md)."""

    backend: str = "local"
    epoch_seconds: float = 60.0
    confirmations: int = 1
    evm_rpc_url: str | None = None
    evm_contract: str | None = None
    evm_key_file: str | None = None
    chainmaker_sdk_config: str | None = None
    chainmaker_contract: str | None = None
    journal_key_file: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AnchorConfig:
        env = os.environ if env is None else env
        backend = env.get("NDR_ANCHOR_BACKEND", "local").strip().lower()
        if backend not in BACKEND_KINDS:
            raise ValueError(f"NDR_ANCHOR_BACKEND must be one of {BACKEND_KINDS}, not {backend!r}")
        return cls(
            backend=backend,
            epoch_seconds=float(env.get("NDR_ANCHOR_EPOCH_SECONDS", "60")),
            confirmations=int(env.get("NDR_ANCHOR_CONFIRMATIONS", "1")),
            evm_rpc_url=env.get("NDR_EVM_RPC_URL"),
            evm_contract=env.get("NDR_EVM_CONTRACT"),
            evm_key_file=env.get("NDR_EVM_KEY_FILE"),
            chainmaker_sdk_config=env.get("NDR_CHAINMAKER_SDK_CONFIG"),
            chainmaker_contract=env.get("NDR_CHAINMAKER_CONTRACT"),
            journal_key_file=env.get("NDR_ANCHOR_JOURNAL_KEY_FILE"),
        )


def _required(value: str | None, variable: str) -> str:
    if not value:
        raise ValueError(f"{variable} must be set for this anchor backend")
    return value


def make_anchor_backend(config: AnchorConfig, *,
                        write_session_factory: WriteSessionFactory | None = None,
                        var_dir: str | Path = "var") -> AnchorBackend:
    """Build the configured backend. Heavy SDKs are imported only for the backend chosen."""
    if config.backend == "local":
        from anchoring.anchor_backends.local_journal import LocalJournalBackend, load_journal_key

        if write_session_factory is None:
            raise ValueError("the local journal backend needs the database write sessions")
        key_file = config.journal_key_file or str(Path(var_dir) / "anchor-journal.key")
        return LocalJournalBackend(write_session_factory, load_journal_key(key_file))
    if config.backend == "evm":
        from anchoring.anchor_backends.evm import EvmBackend, load_account, web3_for

        return EvmBackend(
            web3_for(_required(config.evm_rpc_url, "NDR_EVM_RPC_URL")),
            _required(config.evm_contract, "NDR_EVM_CONTRACT"),
            load_account(_required(config.evm_key_file, "NDR_EVM_KEY_FILE")),
        )
    if config.backend == "chainmaker":
        from anchoring.anchor_backends.chainmaker import ChainMakerBackend

        return ChainMakerBackend.from_sdk_config(
            _required(config.chainmaker_sdk_config, "NDR_CHAINMAKER_SDK_CONFIG"),
            _required(config.chainmaker_contract, "NDR_CHAINMAKER_CONTRACT"),
        )
    raise ValueError(f"unknown anchor backend {config.backend!r}")
