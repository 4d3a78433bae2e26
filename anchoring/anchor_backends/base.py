"""The shared types of anchor backends: what the worker asks and what every backend answers.

The worker only ever asks a backend four things: what is the latest anchored size of a log
(so it never anchors a smaller or equal size twice, even after losing its own database rows),
submit one anchor, how is a submitted transaction doing, and who are you (for receipts). Every
backend answers in the same small value types below, so the worker's retry, confirmation and
re-anchor logic is written once and exercised against every backend.

Backends raise :class:`ChainUnavailable` when the chain cannot be reached (the worker backs off
and retries) and :class:`AnchorRejected` when the chain refused the anchor itself.

Kept apart from the package's ``__init__`` (configuration and the factory), so each backend
module imports these types without importing the factory that imports the backends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
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
