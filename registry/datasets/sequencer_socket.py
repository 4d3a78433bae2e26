"""One sequencer for every web worker: publishes cross a Unix socket to `ndr sequencer`.

Why: each gunicorn worker's own sequencer (registry/datasets/sequencer.py) only batches that
worker's requests. With four workers and eight publishers a batch held one or two writes, and
the batches of different workers took the catalogue's write lock in turn. On PostgreSQL the
lock is held across a dozen round trips to the server, each delayed on a busy 2-core machine,
so the lock itself became the limit. Tessera and Trillian sequence in one place; so do we.
deploy/gunicorn.conf.py starts `ndr sequencer` beside the workers. A worker still checks a
write in its request thread (permission, schema, canonical JSON, index text) and sends only
the prepared request. The sequencer plans and records the requests of every worker in one
batch and sends each answer back after its commit.

What stays true:
* The worker answers only what the sequencer answered after its commit.
* A worker that cannot reach the sequencer (not started yet, restarting, killed) records the
  write itself, in its own batch, exactly as without this process. Nothing is lost or doubled:
  the write was never sent.
* A sequencer that is shutting down answers a write it did not record with "unavailable";
  the worker then records it itself.
* If the connection breaks after the request was sent, the outcome is unknown. The client gets
  503 with Retry-After, as after a crash; with an Idempotency-Key its retry is safe.
* Only a peer that knows the key derived from the session secret (a 0600 file) may connect:
  `multiprocessing.connection` authenticates both sides with HMAC before anything is
  unpickled, and the socket itself is created 0600 in the private var directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
from dataclasses import asdict
from multiprocessing.connection import Client, Connection, Listener
from multiprocessing.context import AuthenticationError
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from registry.config import Settings
from registry.datasets.actions import Answer
from registry.datasets.sequencer import PublishSequencer
from registry.datasets.write_requests import WriteRequest
from registry.problems import FieldError, Problem

log = logging.getLogger(__name__)


class SequencerUnavailable(Exception):
    """The sequencer process could not be reached; the request was not sent."""


class IntegrityConflict(Exception):
    """The sequencer's database refused the write on a unique constraint (a lost race)."""


def default_socket_path(var_dir: Path) -> Path:
    """var/publish-sequencer.sock, unless that is longer than a Unix socket name may be (108
    bytes): then a name in the temporary directory, unique to this var directory. The key,
    not the directory, keeps strangers out; the file is 0600 either way."""
    path = Path(var_dir).resolve() / "publish-sequencer.sock"
    if len(os.fsencode(path)) < 100:
        return path
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"ndr-sequencer-{digest}.sock"


def socket_path(settings: Settings) -> Path:
    return settings.sequencer_socket or default_socket_path(settings.var_dir)


def socket_key(settings: Settings) -> bytes:
    """The connection key: derived from the session secret, so no further secret file."""
    secret = Path(settings.secret_key_file or settings.var_dir / "session-secret.key")
    return hashlib.sha256(b"ndr publish sequencer\0" + secret.read_bytes()).digest()


def _problem_from(fields: dict[str, Any]) -> Problem:
    errors = [FieldError(**error) for error in fields.pop("errors", [])]
    return Problem(**fields, errors=errors)


def _outcome_unknown() -> Problem:
    return Problem(503, "Write outcome unknown",
                   "the publish sequencer stopped while recording this write; it may or may "
                   "not have been recorded. Retry with the same Idempotency-Key to be safe",
                   "sequencer-interrupted", headers={"Retry-After": "1"})


class SequencerServer:
    """The sequencer process's listener: one thread per worker connection, each handing its
    requests to the one PublishSequencer, which batches them all."""

    def __init__(self, sequencer: PublishSequencer, path: Path, key: bytes) -> None:
        self.sequencer = sequencer
        self.path = path
        self._key = key
        self._listener: Listener | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        """Listen on the socket and accept worker connections in a daemon thread."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a killed sequencer
        old_umask = os.umask(0o077)  # the socket file: 0600
        try:
            self._listener = Listener(str(self.path), family="AF_UNIX", authkey=self._key)
        finally:
            os.umask(old_umask)
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True,
                         name="ndr-sequencer-accept").start()
        log.info("publish sequencer listening on %s", self.path)

    def _accept(self, listener: Listener) -> None:
        while not self._stopping.is_set():
            try:
                connection = listener.accept()
            except AuthenticationError:
                log.warning("publish sequencer: a peer without the key was refused")
                continue
            except (OSError, EOFError):
                if self._stopping.is_set():
                    return
                log.warning("publish sequencer: a connection failed", exc_info=True)
                continue
            threading.Thread(target=self._serve, args=(connection,), daemon=True,
                             name="ndr-sequencer-connection").start()

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        self.sequencer.stop()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _serve(self, connection: Connection) -> None:
        with connection:
            while True:
                try:
                    request = connection.recv()
                except (EOFError, OSError):
                    return
                try:
                    connection.send(self.answer(request))
                except OSError:
                    return

    def answer(self, request: object) -> tuple[str, Any]:
        """Record one request; the reply says how it ended, as plain data."""
        if not isinstance(request, WriteRequest):
            return "failed", f"not a write request: {type(request).__name__}"
        if self._stopping.is_set():
            return "unavailable", None  # not recorded: the worker records it itself
        try:
            return "answer", self.sequencer.submit(request.plan, request.slug_candidates())
        except Problem as problem:
            if problem.slug == "shutting-down":  # stopped before its batch: not recorded
                return "unavailable", None
            return "problem", asdict(problem)  # FieldErrors become dicts too
        except IntegrityError:
            return "integrity", None
        except Exception as exc:  # the worker turns it into its usual 500 problem
            log.exception("the publish sequencer failed a write")
            return "failed", type(exc).__name__


class RemoteSequencer:
    """A web worker's handle on the sequencer process: one connection per request thread."""

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        self._key = key
        self._local = threading.local()
        # for /metrics: answered here / refused with a problem / unavailable / unknown
        self.outcomes = {"answered": 0, "problem": 0, "unavailable": 0, "unknown": 0}

    def submit(self, request: WriteRequest) -> Answer:
        """The write's answer from the sequencer process. Raises SequencerUnavailable when
        the request could not be sent (the caller records it itself), the write's own
        Problem, IntegrityConflict, or a 503 Problem when the outcome is unknown."""
        try:
            kind, value = self._exchange(request)
        except SequencerUnavailable:
            self.outcomes["unavailable"] += 1
            raise
        except Problem:
            self.outcomes["unknown"] += 1
            raise
        self.outcomes["answered" if kind == "answer" else "problem"] += 1
        if kind == "answer":
            assert isinstance(value, Answer)
            return value
        if kind == "problem":
            raise _problem_from(value)
        if kind == "integrity":
            raise IntegrityConflict()
        raise RuntimeError(f"the publish sequencer failed the write ({value})")

    def _exchange(self, request: WriteRequest) -> tuple[str, Any]:
        connection = self._connection()
        try:
            connection.send(request)
        except OSError:
            self._drop()
            raise SequencerUnavailable(str(self.path)) from None
        try:
            kind, value = connection.recv()
        except (EOFError, OSError):
            self._drop()
            raise _outcome_unknown() from None
        if kind == "unavailable":
            self._drop()
            raise SequencerUnavailable(f"{self.path}: shutting down")
        return kind, value

    def _connection(self) -> Connection:
        connection: Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        if not self.path.exists():
            raise SequencerUnavailable(str(self.path))
        try:
            connection = Client(str(self.path), family="AF_UNIX", authkey=self._key)
        except (OSError, EOFError, AuthenticationError) as exc:
            raise SequencerUnavailable(f"{self.path}: {exc}") from None
        self._local.connection = connection
        return connection

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.close()
