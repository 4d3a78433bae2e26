"""Replay the whole log from its tiles and hold the log to every checkpoint it ever showed.

The monitor trusts nothing the server computed: it recomputes each leaf from its entry and the
root from those leaves alone. Its state file keeps the last verified size, root, signed note
and the compact-range right edge, so the next run only fetches new entries - and extending the
verified edge to the new signed root *is* the proof that the new checkpoint extends the old.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import os
import threading
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from anchoring import tlog
from anchoring.auditor import entry as entry_format
from anchoring.auditor.key_rotation import WELL_KNOWN as ROTATIONS_PATH
from anchoring.auditor.key_rotation import RotationError, follow_rotations
from anchoring.checkpoint import Checkpoint, open_checkpoint
from anchoring.note import NoteVerifier

_WINDOW = 64  # tiles in flight at once: bounded memory, enough to keep the pool busy


class MonitorAlarm(RuntimeError):
    """The log misbehaved: tampered entries, a rollback, or a split view."""


class FetchError(RuntimeError):
    """The server did not answer as a tlog-tiles log should."""


@dataclass
class MonitorState:
    origin: str
    size: int = 0
    root: bytes = field(default_factory=tlog.empty_tree_hash)
    right_edge: list[bytes] = field(default_factory=list)
    checkpoint: str = ""  # the last verified signed note: evidence if the log later forks

    def to_json(self) -> dict[str, object]:
        return {"origin": self.origin, "size": self.size,
                "root": base64.b64encode(self.root).decode(),
                "right_edge": [base64.b64encode(h).decode() for h in self.right_edge],
                "checkpoint": self.checkpoint}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> MonitorState:
        edge = [base64.b64decode(str(h)) for h in data["right_edge"]]  # type: ignore[attr-defined]
        state = cls(origin=str(data["origin"]), size=int(data["size"]),  # type: ignore[call-overload]
                    root=base64.b64decode(str(data["root"])), right_edge=edge,
                    checkpoint=str(data.get("checkpoint", "")))
        if len(edge) != state.size.bit_count() or tlog.root_from_right_edge(edge) != state.root:
            raise ValueError("state file is corrupt: right edge does not give its root")
        return state


def load_state(path: Path, origin: str) -> MonitorState:
    if not path.exists():
        return MonitorState(origin=origin)
    state = MonitorState.from_json(json.loads(path.read_text()))
    if state.origin != origin:
        raise ValueError(f"state file is for log {state.origin!r}, not {origin!r}")
    return state


def save_state(path: Path, state: MonitorState) -> None:
    """Write atomically (temp file + rename) so a crash never leaves half a state."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=1))
    os.replace(tmp, path)


class TileClient:
    """GETs below a log prefix over keep-alive connections, one per worker thread."""

    def __init__(self, prefix: str, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(prefix.rstrip("/") + "/")
        if parsed.scheme not in ("http", "https"):
            raise ValueError("log URL must be http or https")
        self._https = parsed.scheme == "https"
        self._netloc = parsed.netloc
        self._path = parsed.path
        self._timeout = timeout
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._netloc, timeout=self._timeout)
            self._local.conn = conn
        return conn

    def get(self, path: str) -> bytes:
        for attempt in (1, 2):  # a keep-alive connection the server closed is retried once
            conn = self._connection()
            try:
                conn.request("GET", self._path + path,
                             headers={"Accept-Encoding": "gzip, identity"})
                response = conn.getresponse()
                body = response.read()
            except (http.client.HTTPException, ConnectionError, TimeoutError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
                continue
            if response.status != 200:
                raise FetchError(f"GET {self._path}{path}: HTTP {response.status}")
            if response.getheader("Content-Encoding", "").lower() == "gzip":
                body = gzip.decompress(body)
            return body
        raise AssertionError("unreachable")


@dataclass(frozen=True)
class MonitorResult:
    previous_size: int
    size: int
    root: bytes
    entries_checked: int


def _tiles_between(start: int, end: int) -> list[tlog.Tile]:
    """Entry bundles covering records [start, end) of a tree of size `end`."""
    first = start // tlog.TILE_WIDTH
    tiles = []
    n = first
    while n * tlog.TILE_WIDTH < end:
        width = min(tlog.TILE_WIDTH, end - n * tlog.TILE_WIDTH)
        tiles.append(tlog.Tile(level=tlog.ENTRIES_LEVEL, n=n, width=width))
        n += 1
    return tiles


def _fetch_in_order(client: TileClient, pool: ThreadPoolExecutor, tiles: list[tlog.Tile]
                    ) -> Iterator[tuple[tlog.Tile, bytes]]:
    for start in range(0, len(tiles), _WINDOW):
        window = tiles[start:start + _WINDOW]
        yield from zip(window, pool.map(lambda t: client.get(t.path()), window), strict=True)


def _first_bad_leaf(client: TileClient, start: int, end: int, leaves: list[bytes]) -> str:
    """Compare recomputed leaves with the log's own level-0 tiles to name the bad entry."""
    for tile in _tiles_between(start, end):
        hash_tile = tlog.Tile(level=0, n=tile.n, width=tile.width)
        try:
            served = tlog.split_hash_tile(client.get(hash_tile.path()), tile.width)
        except (FetchError, tlog.ProofError):
            continue
        for i, leaf in enumerate(served):
            index = tile.n * tlog.TILE_WIDTH + i
            if index >= start and leaves[index - start] != leaf:
                return f"; entry {index} does not hash to the log's own leaf hash (tampered)"
    return ""


def _first_invalid_entry(entries: list[bytes], first_index: int, skip: int) -> str | None:
    """Every new entry must be canonical JSON of an allowed type and version, not just bytes
    that happen to hash into the tree: a log that signs garbage is misbehaving too."""
    for offset in range(skip, len(entries)):
        try:
            entry_format.parse_entry(entries[offset])
        except entry_format.EntryError as exc:
            return f"entry {first_index + offset} is not a valid log entry: {exc}"
    return None


def _open_following_rotations(client: TileClient, note: str, trusted: NoteVerifier,
                              origin: str) -> Checkpoint:
    """Open the checkpoint with the trusted key, or with a key the log rotated to from it:
    the chain of statements served at ``key-rotations``, each signed by the key before it."""
    try:
        return open_checkpoint(note, trusted, origin)
    except ValueError as first:
        try:
            raw = json.loads(client.get(ROTATIONS_PATH))
            statements = [str(r["statement"]) for r in raw["rotations"]]
        except (FetchError, ValueError, KeyError, TypeError):
            raise first from None
        try:
            chain = follow_rotations(trusted, statements)
        except RotationError as exc:
            raise MonitorAlarm(f"the log's key rotations do not verify: {exc}") from None
        for key in reversed(chain[1:]):
            try:
                return open_checkpoint(note, key, origin)
            except ValueError:
                continue
        raise first from None


def run_monitor(url: str, verifier: NoteVerifier, state_path: Path | None = None, *,
                origin: str | None = None, workers: int = 4, check_entries: bool = True
                ) -> MonitorResult:
    """Verify the log at `url` up to its current checkpoint; raise MonitorAlarm if it lies.

    With `check_entries` (the default) every new entry is parsed with the log-entry format
    module; turn it off only for a log of opaque entries (tests of the tree alone)."""
    origin = origin or verifier.name
    client = TileClient(url)
    note = client.get("checkpoint").decode("utf-8")
    checkpoint: Checkpoint = _open_following_rotations(client, note, verifier, origin)
    state = load_state(state_path, origin) if state_path else MonitorState(origin=origin)

    if checkpoint.size < state.size:
        raise MonitorAlarm(
            f"rollback or split view: the log now signs size {checkpoint.size}, but it signed "
            f"size {state.size} before.\n--- earlier checkpoint ---\n{state.checkpoint}"
            f"--- current checkpoint ---\n{note}")
    leaves: list[bytes] = []
    invalid: str | None = None
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for tile, data in _fetch_in_order(client, pool, _tiles_between(state.size,
                                                                       checkpoint.size)):
            entries = tlog.split_entry_bundle(data)
            if len(entries) != tile.width:
                raise MonitorAlarm(f"{tile.path()} has {len(entries)} entries, not {tile.width}")
            skip = max(0, state.size - tile.n * tlog.TILE_WIDTH)
            if check_entries and invalid is None:
                invalid = _first_invalid_entry(entries, tile.n * tlog.TILE_WIDTH, skip)
            leaves.extend(entry_format.leaf_hash(e) for e in entries[skip:])
    edge = tlog.extend_right_edge(state.size, state.right_edge, leaves)
    root = tlog.root_from_right_edge(edge)
    if root != checkpoint.root:
        culprit = _first_bad_leaf(client, state.size, checkpoint.size, leaves)
        if state.size:
            raise MonitorAlarm(
                f"split view or tampering: the entries after the verified size {state.size} "
                f"do not extend it to the signed root at size {checkpoint.size}{culprit}.\n"
                f"--- earlier checkpoint ---\n{state.checkpoint}"
                f"--- current checkpoint ---\n{note}")
        raise MonitorAlarm(f"tampering: the entries served do not hash to the signed root at "
                           f"size {checkpoint.size}{culprit}")
    if invalid is not None:
        raise MonitorAlarm(f"the log signed an entry that breaks the entry format: {invalid}"
                           f"\n--- current checkpoint ---\n{note}")
    result = MonitorResult(previous_size=state.size, size=checkpoint.size, root=root,
                           entries_checked=len(leaves))
    if state_path is not None:
        save_state(state_path, MonitorState(origin=origin, size=checkpoint.size, root=root,
                                            right_edge=edge, checkpoint=note))
    return result
