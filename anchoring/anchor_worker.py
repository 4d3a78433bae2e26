"""The anchor worker: puts the latest signed checkpoint on chain once per epoch.

Why it is shaped like this:

* **One transaction per epoch, whatever the traffic.** Writes only grow the tree; the worker
  anchors the newest signed checkpoint at each epoch tick, which covers every earlier leaf by
  consistency. A busy hour costs the same as a quiet one.
* **One worker across all hosts.** Every gunicorn host may start a worker; a database lease
  (conditional UPDATE with an expiry, renewed every run and again right before a submission)
  lets exactly one of them act. The contract's strictly-increasing sizes make even a lost
  lease harmless: a duplicate submission reverts instead of recording twice.
* **Never the same or a smaller size twice.** Before submitting it checks both its own rows
  (pending or final, enforced again by a partial unique index) and the chain's own latest.
* **The chain may vanish.** Unreachable nodes raise ``ChainUnavailable``; the worker backs off
  exponentially and, when the chain is back, anchors the newest checkpoint — the backlog drains
  in one transaction because the newest checkpoint covers it all.
* **A receipt is not the end.** An anchor becomes final only after the configured number of
  confirmations; a transaction that reverted, or that the chain no longer knows (dropped,
  reorged away, node reset), is marked failed and the checkpoint is anchored again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from anchoring.anchor_backends import (
    AnchorBackend,
    AnchorRejected,
    AnchorRequest,
    ChainUnavailable,
    TxState,
    TxStatus,
    WriteSessionFactory,
    checkpoint_sha256,
)
from anchoring.anchor_store import (
    FAILED,
    FINAL,
    PENDING,
    Anchor,
    BackendIdentity,
    as_utc,
    largest_live_size,
    last_submitted_at,
    latest_final_anchor,
    pending_anchors,
    release_lease,
    try_acquire_lease,
)

log = logging.getLogger(__name__)

LEASE_NAME = "anchor-worker"


class SignedCheckpoint(Protocol):
    """What the worker needs of a checkpoint: its body fields and the full signed note."""

    @property
    def origin(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def root(self) -> bytes: ...
    @property
    def note(self) -> str: ...


LatestCheckpoint = Callable[[Session], SignedCheckpoint | None]


@dataclass
class RunReport:
    """What one ``run_once`` did (for logs, ``ndr anchor run -v`` and tests)."""

    leader: bool
    submitted_size: int | None = None
    tx_id: str | None = None
    finalised: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    chain_error: str | None = None
    rejected: str | None = None
    backing_off: bool = False


@dataclass(frozen=True)
class _PendingView:
    id: int
    size: int
    tx_id: str
    submitted_at: datetime
    block_height: int | None


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def epoch_number(moment: float, epoch_seconds: float) -> int:
    return int(moment // epoch_seconds)


def backoff_delay(failures: int, initial: float, maximum: float) -> float:
    """Seconds to wait after ``failures`` consecutive chain failures (1 → initial, doubling)."""
    if failures <= 0:
        return 0.0
    return min(maximum, initial * 2 ** min(failures - 1, 32))


class AnchorWorker:
    def __init__(
        self,
        write_session_factory: WriteSessionFactory,
        latest_checkpoint: LatestCheckpoint,
        backend: AnchorBackend,
        epoch_seconds: float = 60.0,
        confirmations: int = 1,
        *,
        worker_id: str | None = None,
        lease_ttl_seconds: float | None = None,
        missing_grace_seconds: float | None = None,
        backoff_initial_seconds: float = 1.0,
        backoff_max_seconds: float = 300.0,
        poll_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if confirmations < 1:
            raise ValueError("confirmations must be at least 1")
        self._sessions = write_session_factory
        self._latest_checkpoint = latest_checkpoint
        self.backend = backend
        self.epoch_seconds = float(epoch_seconds)
        self.confirmations = confirmations
        self.worker_id = worker_id or default_worker_id()
        self.poll_seconds = poll_seconds if poll_seconds is not None else \
            max(0.05, min(self.epoch_seconds, 5.0))
        self.lease_ttl_seconds = lease_ttl_seconds if lease_ttl_seconds is not None else \
            max(30.0, 3 * self.poll_seconds)
        # A transaction the node has never heard of right after we sent it is odd but possible
        # (load-balanced RPC); give it an epoch before calling it lost.
        self.missing_grace_seconds = missing_grace_seconds if missing_grace_seconds is not None \
            else max(5.0, self.epoch_seconds)
        self.backoff_initial_seconds = backoff_initial_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self._clock = clock
        self._failures = 0
        self._not_before = 0.0
        self._last_tick: float | None = None
        self._growth_seen_at: float | None = None
        self._identity: BackendIdentity | None = None

    @property
    def consecutive_failures(self) -> int:
        """Chain failures since the last run that reached the chain (0 when healthy)."""
        return self._failures

    # --- the loop ------------------------------------------------------------------------------

    def run_forever(self, stop_event: threading.Event) -> None:
        """Run until ``stop_event`` is set; then hand the lease back for a quick takeover."""
        try:
            while not stop_event.is_set():
                try:
                    report = self.run_once()
                    if report.chain_error:
                        log.warning("anchor chain unavailable (retry in %.1fs): %s",
                                    max(0.0, self._not_before - self._clock()),
                                    report.chain_error)
                except Exception:
                    log.exception("anchor worker run failed")
                stop_event.wait(self._seconds_until_next_run())
        finally:
            try:
                with self._sessions() as session:
                    release_lease(session, LEASE_NAME, self.worker_id)
            except Exception:
                log.exception("could not release the anchor lease")

    def _seconds_until_next_run(self) -> float:
        now = self._clock()
        if self._not_before > now:
            return max(0.01, self._not_before - now)
        return self.poll_seconds

    def run_once(self) -> RunReport:
        now = self._clock()
        if not self._hold_lease(now):
            return RunReport(leader=False)
        report = RunReport(leader=True)
        if now < self._not_before:
            report.backing_off = True
            return report
        try:
            identity = self._backend_identity()
            self._advance_pending(identity, now, report)
            self._anchor_if_grown(identity, now, report)
            if report.submitted_size is not None:
                self._advance_pending(identity, self._clock(), report)
        except ChainUnavailable as exc:
            self._failures += 1
            self._not_before = now + backoff_delay(self._failures, self.backoff_initial_seconds,
                                                   self.backoff_max_seconds)
            report.chain_error = str(exc)
            return report
        self._failures = 0
        self._not_before = 0.0
        return report

    # --- steps ---------------------------------------------------------------------------------

    def _hold_lease(self, now: float) -> bool:
        with self._sessions() as session:
            return try_acquire_lease(session, LEASE_NAME, self.worker_id, int(now * 1000),
                                     int(self.lease_ttl_seconds * 1000))

    def _backend_identity(self) -> BackendIdentity:
        if self._identity is None:
            self._identity = BackendIdentity(self.backend.name, self.backend.chain_id,
                                             self.backend.contract)
        return self._identity

    def _epoch_closed_since_growth(self, now: float, previous_submission: datetime | None
                                   ) -> bool:
        """Anchor an epoch's growth once that epoch has closed: writes spread over M epochs of
        the grid then cost exactly M transactions (one at each following boundary), at most
        one submission lands in any epoch, and no write waits more than about one epoch."""
        if self.epoch_seconds <= 0:
            return True
        if self._growth_seen_at is None:
            self._growth_seen_at = now
        current = epoch_number(now, self.epoch_seconds)
        if previous_submission is not None and \
                epoch_number(previous_submission.timestamp(), self.epoch_seconds) >= current:
            return False
        return epoch_number(self._growth_seen_at, self.epoch_seconds) < current

    def _epoch_due(self, now: float) -> bool:
        """At most one anchor per epoch of a fixed grid (epoch k = [k*E, (k+1)*E) seconds since
        the Unix epoch), so writes spread over M epochs cost exactly M transactions, and every
        host agrees on where epochs start."""
        if self._last_tick is None or self.epoch_seconds <= 0:
            return True
        return epoch_number(now, self.epoch_seconds) > epoch_number(self._last_tick,
                                                                    self.epoch_seconds)

    def _advance_pending(self, identity: BackendIdentity, now: float, report: RunReport) -> None:
        with self._sessions() as session:
            views = [_PendingView(a.id, a.size, a.tx_id, as_utc(a.submitted_at), a.block_height)
                     for a in pending_anchors(session, identity)]
        for view in views:
            status = self.backend.status(view.tx_id)
            self._apply_status(view, status, now, report)

    def _apply_status(self, view: _PendingView, status: TxStatus, now: float,
                      report: RunReport) -> None:
        age = now - view.submitted_at.timestamp()
        with self._sessions() as session:
            anchor = session.get(Anchor, view.id)
            if anchor is None or anchor.status != PENDING:
                return
            if status.state is TxState.INCLUDED:
                anchor.block_height = status.block_height
                anchor.block_hash = status.block_hash
                anchor.confirmations = status.confirmations
                if status.confirmations >= self.confirmations:
                    anchor.status = FINAL
                    anchor.confirmed_at = datetime.fromtimestamp(now, UTC)
                    report.finalised.append(anchor.size)
            elif status.state is TxState.FAILED or (
                    status.state is TxState.MISSING
                    and (view.block_height is not None or age > self.missing_grace_seconds)):
                anchor.status = FAILED
                anchor.error = f"{status.state.value}: {status.detail}"
                report.failed.append(anchor.size)
                log.warning("anchor of size %d failed: %s", anchor.size, anchor.error)

    def _recheck_latest_final(self, identity: BackendIdentity, origin: str,
                              report: RunReport) -> None:
        """Does the chain still hold our newest final anchor? (Reset nodes, deep reorgs.)"""
        with self._sessions() as session:
            anchor = latest_final_anchor(session, identity, origin)
            if anchor is None:
                return
            anchor_id, tx_id = anchor.id, anchor.tx_id
        status = self.backend.status(tx_id)
        with self._sessions() as session:
            anchor = session.get(Anchor, anchor_id)
            if anchor is None or anchor.status != FINAL:
                return
            if status.state is TxState.INCLUDED:
                anchor.block_height = status.block_height
                anchor.block_hash = status.block_hash
                anchor.confirmations = status.confirmations
            else:
                anchor.status = FAILED
                anchor.error = f"final anchor lost: {status.state.value}: {status.detail}"
                report.failed.append(anchor.size)
                log.error("final anchor of size %d is no longer on chain: %s", anchor.size,
                          anchor.error)

    def _anchor_if_grown(self, identity: BackendIdentity, now: float,
                         report: RunReport) -> None:
        """Anchor the newest checkpoint if the tree grew and the last submission is an epoch old.

        Once per epoch, even without growth, re-check that our newest final anchor is still on
        chain, so a reset node or a deep reorg is noticed while the registry is quiet too.
        """
        with self._sessions() as session:
            checkpoint = self._latest_checkpoint(session)
            if checkpoint is None:
                return
            origin, size, root, note = (checkpoint.origin, checkpoint.size, checkpoint.root,
                                        checkpoint.note)
            in_flight = bool(pending_anchors(session, identity))
            previous_submission = last_submitted_at(session, identity)
        if self._epoch_due(now):
            self._last_tick = now
            self._recheck_latest_final(identity, origin, report)
        if in_flight or size <= 0:
            return
        with self._sessions() as session:
            if size <= largest_live_size(session, identity, origin):
                self._growth_seen_at = None
                return  # the tree has not grown since the last anchor
        if not self._epoch_closed_since_growth(now, previous_submission):
            return
        on_chain = self.backend.latest_anchored(origin)
        if on_chain is not None and on_chain.size >= size:
            log.info("chain already holds size %d >= %d for %r; not anchoring", on_chain.size,
                     size, origin)
            return
        if not self._hold_lease(self._clock()):
            return
        self._growth_seen_at = None
        request = AnchorRequest(origin, size, root, checkpoint_sha256(note))
        try:
            submission = self.backend.submit(request)
        except AnchorRejected as exc:
            report.rejected = str(exc)
            log.error("anchor of size %d rejected: %s", size, exc)
            return
        try:
            with self._sessions() as session:
                session.add(Anchor(
                    origin=origin, size=size, root=root,
                    checkpoint_sha256=request.checkpoint_sha256, checkpoint_note=note,
                    backend=identity.backend, chain_id=identity.chain_id,
                    contract=identity.contract, tx_id=submission.tx_id,
                    submitted_at=datetime.fromtimestamp(now, UTC), status=PENDING,
                    confirmations=0))
        except IntegrityError:
            log.error("another worker recorded size %d concurrently (tx %s)", size,
                      submission.tx_id)
            return
        report.submitted_size = size
        report.tx_id = submission.tx_id
