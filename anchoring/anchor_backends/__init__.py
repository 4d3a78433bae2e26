"""Where signed checkpoints are anchored: the backend interface and the factory that picks one.

The worker only ever asks a backend four things: what is the latest anchored size of a log
(so it never anchors a smaller or equal size twice, even after losing its own database rows),
submit one anchor, how is a submitted transaction doing, and who are you (for receipts). Every
backend answers in the same small value types below, so the worker's retry, confirmation and
re-anchor logic is written once and exercised against every backend.

Backends raise :class:`ChainUnavailable` when the chain cannot be reached (the worker backs off
and retries) and :class:`AnchorRejected` when the chain refused the anchor itself.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

from sqlalchemy.orm import Session

WriteSessionFactory = Callable[[], AbstractContextManager[Session]]


class ChainUnavailable(Exception):
    """The chain (node, RPC endpoint or contract) could not be reached; try again later."""


class AnchorRejected(Exception):
    """The chain refused this anchor (for example its size is not above the latest)."""


@dataclass(frozen=True)
class AnchorRequest:
    """One checkpoint to anchor: what the contract stores for (origin, size)."""

    origin: str
    size: int
    root: bytes
    checkpoint_sha256: bytes

    def __post_init__(self) -> None:
        if len(self.root) != 32 or len(self.checkpoint_sha256) != 32:
            raise ValueError("root and checkpoint hash must be 32 bytes")
        if self.size <= 0:
            raise ValueError("only a non-empty log can be anchored")

    @classmethod
    def from_checkpoint_note(cls, origin: str, size: int, root: bytes,
                             note: str) -> AnchorRequest:
        return cls(origin, size, root, checkpoint_sha256(note))


def checkpoint_sha256(note: str) -> bytes:
    """The checkpoint hash anchored on chain: SHA-256 of the full signed note's UTF-8 bytes."""
    return hashlib.sha256(note.encode("utf-8")).digest()


@dataclass(frozen=True)
class AnchoredState:
    """What the chain says is the latest anchor of a log."""

    size: int
    root: bytes
    checkpoint_sha256: bytes


@dataclass(frozen=True)
class Submission:
    """A transaction the backend accepted for inclusion."""

    tx_id: str


class TxState(StrEnum):
    PENDING = "pending"      # known to the chain, not yet in a block
    INCLUDED = "included"    # in a canonical block and executed successfully
    FAILED = "failed"        # in a block but reverted / refused by the contract
    MISSING = "missing"      # the chain does not know it (dropped, reorged away, reset node)


@dataclass(frozen=True)
class TxStatus:
    state: TxState
    block_height: int | None = None
    block_hash: str | None = None
    confirmations: int = 0
    detail: str = ""


@runtime_checkable
class AnchorBackend(Protocol):
    """A place that can hold anchors. ``name`` goes into receipts and API output verbatim."""

    name: str
    chain_id: str
    contract: str

    def latest_anchored(self, origin: str) -> AnchoredState | None: ...

    def submit(self, request: AnchorRequest) -> Submission: ...

    def status(self, tx_id: str) -> TxStatus: ...


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
