"""The hub fetches the checkpoints of members that do not push (mode ``poll``).

Network first, outside any transaction: GET the member's ``/log/checkpoint`` and, if it grew,
a consistency proof from the size the hub cosigned; then the very same witness decision as a
pushed ``add-checkpoint`` (one code path, one set of checks). A member that times out or
answers garbage only gets its ``last_error`` set; it never stops the loop or the others.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from anchoring.auditor.key_rotation import WELL_KNOWN as ROTATIONS_PATH
from anchoring.checkpoint import CheckpointError, parse_checkpoint
from anchoring.note import NoteError, split_note
from anchoring.witness import AddCheckpoint, Verdict
from registry.federation.models import FederationMember, MemberMode, MemberStatus
from registry.federation.witnessing import HubWitness
from registry.timefmt import utc_now

log = logging.getLogger(__name__)
MAX_BODY = 1 << 20


class FetchError(RuntimeError):
    """The member did not answer, or not as a registry should."""


def fetch(url: str, timeout: float = 10.0, limit: int = MAX_BODY) -> bytes:
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise FetchError(f"refusing a non-http URL {url!r}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            body = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"GET {url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise FetchError(f"GET {url}: {exc}") from None
    if len(body) > limit:
        raise FetchError(f"GET {url}: answer larger than {limit} bytes")
    return body


@dataclass(frozen=True)
class PollTarget:
    origin: str
    url: str
    witnessed_size: int
    interval: float


def consistency_proof(base: str, old: int, new: int, timeout: float = 10.0) -> list[bytes]:
    raw = fetch(f"{base}/api/v1/log/proof/consistency?old={old}&new={new}", timeout)
    try:
        data = json.loads(raw)
        return [base64.b64decode(h, validate=True) for h in data["consistency_path"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise FetchError(f"malformed consistency proof from {base}: {exc}") from None


def poll_member(read: Callable[[], AbstractContextManager[Session]],
                write: Callable[[], AbstractContextManager[Session]], witness: HubWitness,
                target: PollTarget, timeout: float = 10.0) -> str:
    """One poll of one member; returns what happened (raises FetchError on network trouble)."""
    base = target.url.rstrip("/")
    note = fetch(f"{base}/log/checkpoint", timeout).decode("utf-8", "replace")
    try:
        text, _ = split_note(note)
        checkpoint = parse_checkpoint(text)
    except (NoteError, CheckpointError) as exc:
        raise FetchError(f"{base}/log/checkpoint is not a checkpoint: {exc}") from None
    if checkpoint.origin != target.origin:
        raise FetchError(f"{base} serves origin {checkpoint.origin!r}, not {target.origin!r}")
    old = target.witnessed_size
    proof = consistency_proof(base, old, checkpoint.size, timeout) \
        if 0 < old < checkpoint.size else []
    request = AddCheckpoint(old, proof, note)
    with read() as session:
        hint = witness.probe(session, target.origin, request)
    with write() as session:
        # A smaller checkpoint goes through the same decision: if the hub cosigned another
        # root at that size, it is a rollback kept as evidence; otherwise a stale cache.
        result = witness.submit(session, target.origin, request, hint)
    if result.verdict == Verdict.FORBIDDEN and follow_rotations_of(write, target, timeout):
        with write() as session:  # signed by a key the member rotated to: try again
            result = witness.submit(session, target.origin, request, hint)
    if checkpoint.size < old and result.verdict != Verdict.FORK:
        raise FetchError(f"member serves size {checkpoint.size} below the cosigned {old} "
                         "(stale cache or rollback)")
    return f"{result.status} {result.verdict}"


def follow_rotations_of(write: Callable[[], AbstractContextManager[Session]],
                        target: PollTarget, timeout: float = 10.0) -> bool:
    """Read the member's published rotation statements (``/log/key-rotations``) and follow
    every one its current key signed; True if the member's key changed."""
    from registry.federation.trust import rotate_member_key
    from registry.problems import Problem

    raw = fetch(f"{target.url.rstrip('/')}/log/{ROTATIONS_PATH}", timeout)
    try:
        statements = [str(r["statement"]) for r in json.loads(raw)["rotations"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise FetchError(f"malformed key rotations from {target.url}: {exc}") from None
    changed = False
    for statement in statements:
        with write() as session:
            member = session.get(FederationMember, target.origin)
            before = member.verifier_key if member else None
            try:
                after = rotate_member_key(session, target.origin, statement).verifier_key
            except Problem:
                session.rollback()
                continue  # signed by a key older than the one we follow: already past it
            changed = changed or after != before
    return changed


class MemberPoller:
    """Background loop over the poll-mode members, each on its own interval."""

    def __init__(self, read: Callable[[], AbstractContextManager[Session]],
                 write: Callable[[], AbstractContextManager[Session]], witness: HubWitness,
                 tick: float = 1.0, timeout: float = 10.0) -> None:
        self._read, self._write, self._witness = read, write, witness
        self._tick, self._timeout = tick, timeout
        self._due: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def targets(self) -> list[PollTarget]:
        with self._read() as session:
            rows = session.scalars(select(FederationMember).where(
                FederationMember.status == MemberStatus.ACTIVE,
                FederationMember.mode == MemberMode.POLL,
                FederationMember.alarm.is_(None)))
            return [PollTarget(m.origin, m.url or "", int(m.witnessed_size), m.poll_interval)
                    for m in rows if m.url]

    def run_once(self, *, force: bool = False) -> dict[str, str]:
        outcomes = {}
        now = time.monotonic()
        for target in self.targets():
            if not force and self._due.get(target.origin, 0) > now:
                continue
            self._due[target.origin] = now + target.interval
            try:
                outcomes[target.origin] = poll_member(self._read, self._write, self._witness,
                                                      target,
                                                      self._timeout)
            except FetchError as exc:
                outcomes[target.origin] = f"error: {exc}"
                self._record_error(target.origin, str(exc))
        return outcomes

    def _record_error(self, origin: str, error: str) -> None:
        with self._write() as session:
            member = session.get(FederationMember, origin)
            if member is not None:
                member.last_error = f"{utc_now().isoformat()}Z {error}"[:2000]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                self.last_error = None
            except Exception as exc:  # a database hiccup: log it, try again next tick
                self.last_error = str(exc)
                log.exception("member polling failed")
            self._stop.wait(self._tick)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ndr-member-poller",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
