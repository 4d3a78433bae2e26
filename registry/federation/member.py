"""A member registry's side of witnessing: submit checkpoints, keep and serve cosignatures.

Writes never wait for witnesses: a background loop takes the latest signed checkpoint and
POSTs it to each configured witness (C2SP tlog-witness ``add-checkpoint``) with a consistency
proof from the size that witness last cosigned. A returned cosignature is verified against the
witness's key before it is stored; ``/log/checkpoint`` then serves the note with those lines
appended, so any client holding the witness keys can demand a quorum.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from anchoring.auditor.cosignature import CosignatureError, CosignatureVerifier
from anchoring.auditor.cosignature import verify_cosignatures as _verify
from anchoring.log_store import SignedCheckpoint, TransparencyLog
from anchoring.note import NoteError
from anchoring.witness import format_add_checkpoint
from registry.federation.models import MemberCosignature

log = logging.getLogger(__name__)
_TIMEOUT = 10.0
_MAX_RESPONSE = 64 * 1024


@dataclass(frozen=True)
class WitnessEndpoint:
    url: str  # submission prefix; the request goes to <url>/add-checkpoint
    verifier: CosignatureVerifier


def parse_witness_config(text: str) -> list[WitnessEndpoint]:
    endpoints = []
    for item in text.replace(";", "\n").splitlines():
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        url, _, vkey = item.partition(" ")
        if urllib.parse.urlsplit(url).scheme not in ("http", "https") or not vkey.strip():
            raise ValueError(f"witness {item!r}: expected '<http(s) URL> <witness vkey>'")
        endpoints.append(WitnessEndpoint(url.rstrip("/"),
                                         CosignatureVerifier.from_vkey(vkey.strip())))
    return endpoints


def _insert_ignore(session: Session):  # type: ignore[no-untyped-def]
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return module.insert(MemberCosignature).on_conflict_do_nothing()


def cosigned_note(session: Session, checkpoint: SignedCheckpoint) -> str:
    """The signed checkpoint with every stored witness cosignature for its size appended.

    A log whose database has no cosignature table yet (a rolling upgrade before migration
    0010, or a bare log without the catalogue) still serves its own signed note.
    """
    try:
        lines = session.scalars(select(MemberCosignature.line).where(
            MemberCosignature.size == checkpoint.size).order_by(MemberCosignature.witness)).all()
    except DBAPIError:
        session.rollback()
        return checkpoint.note
    return checkpoint.note + "".join(lines)


def latest_witnessed_size(session: Session, quorum: int) -> int | None:
    """The largest checkpoint size with at least `quorum` cosignatures stored."""
    return session.scalar(
        select(MemberCosignature.size).group_by(MemberCosignature.size)
        .having(func.count() >= max(quorum, 1)).order_by(MemberCosignature.size.desc())
        .limit(1))


class SubmitError(RuntimeError):
    """A witness could not be reached or answered outside the protocol."""


def post_add_checkpoint(url: str, body: bytes, timeout: float = _TIMEOUT
                        ) -> tuple[int, str, str]:
    """POST to <url>/add-checkpoint; return (status, content type, body text)."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise SubmitError(f"refusing a non-http witness URL {url!r}")
    request = urllib.request.Request(url + "/add-checkpoint", data=body, method="POST",  # noqa: S310
                                     headers={"Content-Type": "text/plain; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return (response.status, response.headers.get("Content-Type", ""),
                    response.read(_MAX_RESPONSE).decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read(_MAX_RESPONSE).decode(
            "utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise SubmitError(f"{url}: {exc}") from exc


def post_rotation(url: str, statement: str, timeout: float = _TIMEOUT) -> tuple[int, str]:
    """POST a key-rotation statement to <witness url>/key-rotation; (status, body text)."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise SubmitError(f"refusing a non-http witness URL {url!r}")
    request = urllib.request.Request(url + "/key-rotation", data=statement.encode(),  # noqa: S310
                                     method="POST",
                                     headers={"Content-Type": "text/plain; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read(_MAX_RESPONSE).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(_MAX_RESPONSE).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise SubmitError(f"{url}: {exc}") from exc


def deliver_rotations(witnesses: list[WitnessEndpoint], statements: list[str]
                      ) -> dict[str, str]:
    """Send every rotation statement, oldest first, to each witness; a witness that already
    follows a statement takes it again without harm. Returns each witness's outcome."""
    outcomes = {}
    for witness in witnesses:
        try:
            for statement in statements:
                status, body = post_rotation(witness.url, statement)
                if status != 200:
                    raise SubmitError(f"answered {status}: {body.strip()[:200]}")
            outcomes[witness.verifier.name] = f"follows {len(statements)} rotation(s)"
        except SubmitError as exc:
            outcomes[witness.verifier.name] = f"error: {exc}"
    return outcomes


class CheckpointSubmitter:
    """Background loop: get the latest checkpoint cosigned by every configured witness."""

    def __init__(self, sessions: Callable[[], AbstractContextManager[Session]],
                 write_sessions: Callable[[], AbstractContextManager[Session]],
                 log_: TransparencyLog, witnesses: list[WitnessEndpoint],
                 interval: float = 1.0) -> None:
        self._read = sessions
        self._write = write_sessions
        self._log = log_
        self.witnesses = witnesses
        self._interval = interval
        self._known: dict[str, int] = {}  # witness name -> size it told us it cosigned
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Not `last_error`: /readyz fails on that, and a member whose witness is down must stay
        # ready (writes never wait for witnesses). Shown by `ndr federation status`.
        self.witness_error: str | None = None
        self.errors: dict[str, str] = {}

    def run_once(self) -> dict[str, str]:
        """One round over all witnesses; returns each witness's outcome (for the CLI/tests)."""
        with self._read() as session:
            latest = self._log.latest_checkpoint(session)
        if latest is None:
            return {}
        outcomes = {}
        for witness in self.witnesses:
            try:
                outcomes[witness.verifier.name] = self._submit(witness, latest)
                self.errors.pop(witness.verifier.name, None)
            except (SubmitError, CosignatureError, NoteError, ValueError) as exc:
                outcomes[witness.verifier.name] = f"error: {exc}"
                self.errors[witness.verifier.name] = str(exc)
        self.witness_error = "; ".join(f"{k}: {v}" for k, v in self.errors.items()) or None
        return outcomes

    def _already_cosigned(self, name: str, size: int) -> bool:
        with self._read() as session:
            return session.get(MemberCosignature, (name, size)) is not None

    def _submit(self, witness: WitnessEndpoint, latest: SignedCheckpoint) -> str:
        name = witness.verifier.name
        if self._known.get(name) == latest.size and self._already_cosigned(name, latest.size):
            return "up to date"
        rotated = False
        for _ in range(3):  # a 409 tells us the witness's size, a 403 to send our rotations
            old = self._known.get(name, 0)
            if old > latest.size:
                raise SubmitError(f"witness {name} cosigned size {old}, above our size "
                                  f"{latest.size}: this log was rolled back?")
            with self._read() as session:
                proof = (self._log.consistency_proof(session, old, latest.size)
                         if 0 < old < latest.size else [])
            status, content_type, body = post_add_checkpoint(
                witness.url, format_add_checkpoint(old, proof, latest.note))
            if status == 409 and content_type.startswith("text/x.tlog.size"):
                try:
                    self._known[name] = int(body.strip())
                except ValueError:
                    raise SubmitError(f"witness {name} sent a malformed size") from None
                continue
            if status == 403 and not rotated and self._deliver_rotations(witness):
                rotated = True  # the witness knew an older key of ours: it follows now
                continue
            if status != 200:
                raise SubmitError(f"witness {name} answered {status}: {body.strip()[:200]}")
            return self._store(witness, latest, body)
        raise SubmitError(f"witness {name} keeps answering 409")

    def _deliver_rotations(self, witness: WitnessEndpoint) -> bool:
        """After our key rotated, a witness refuses (403) the new key's checkpoints until it
        has the statements signed by the old key: send them, no operator needed."""
        with self._read() as session:
            statements = [r.statement for r in self._log.rotations(session)]
        if not statements:
            return False
        outcome = deliver_rotations([witness], statements)[witness.verifier.name]
        if outcome.startswith("error"):
            raise SubmitError(f"witness {witness.verifier.name}: key rotation {outcome}")
        return True

    def _store(self, witness: WitnessEndpoint, latest: SignedCheckpoint, body: str) -> str:
        name = witness.verifier.name
        lines = [line + "\n" for line in body.splitlines() if line.strip()]
        ours = [line for line in lines if line.startswith(f"\u2014 {name} ")]
        if not ours:
            raise SubmitError(f"witness {name} returned no cosignature line of its own")
        cosigned = _verify(latest.note + ours[0], [witness.verifier])  # raises on a forgery
        with self._write() as session:
            session.execute(_insert_ignore(session).values(
                witness=name, size=latest.size, line=ours[0],
                timestamp=cosigned[0].timestamp))
        self._known[name] = latest.size
        return f"cosigned size {latest.size}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # keep going; a database failure is logged
                self.witness_error = str(exc)
                log.exception("witness submission failed")
            self._stop.wait(self._interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ndr-witness-submitter",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
