"""A background thread that signs a checkpoint about every second when the log grew.

Running it in several processes (gunicorn workers, several hosts) is harmless: signing takes
the log head lock, a size that already has a checkpoint is skipped, Ed25519 signatures are
deterministic (same size -> same note), and a primary-key conflict is ignored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

from sqlalchemy.orm import Session

from anchoring.log_store import SignedCheckpoint, TransparencyLog

log = logging.getLogger(__name__)


class CheckpointLoop:
    def __init__(self, write_session_factory: Callable[[], AbstractContextManager[Session]],
                 log: TransparencyLog, interval_seconds: float = 1.0) -> None:
        self._sessions = write_session_factory
        self._log = log
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: BaseException | None = None

    def run_once(self) -> SignedCheckpoint | None:
        with self._sessions() as session:
            return self._log.sign_checkpoint_if_grown(session)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                signed = self.run_once()
                self.last_error = None
                if signed is not None:
                    log.info("signed checkpoint at size %d", signed.size)
            except Exception as exc:  # keep serving; an inconsistency is logged loudly
                self.last_error = exc
                log.exception("checkpoint signing failed")
            self._stop.wait(self._interval)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ndr-checkpointer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
