"""Mirroring a member's catalogue with proofs, up to the checkpoint the hub cosigned.

Trust nothing the member serves that its signed, cosigned root does not vouch for:

1. The level-0 hash tiles for [mirrored, cosigned) must extend the verified compact range of
   [0, mirrored) to exactly the cosigned root. Then every leaf hash is authentic. If they do
   not, nothing of the range is applied (the whole range is refused, with the reason).
2. Each entry from the entry bundles must hash to its authentic leaf; its metadata, fetched
   from the member's API, must hash (RFC 8785, SHA-256) to the entry's ``metadata_sha256``
   and pass the dataset schema. A record that fails is refused alone, with the reason.
3. Only public entries are mirrored; government-only entries are never fetched, let alone
   stored (drafts are never in a log). A government-only (or salted) leaf for a dataset the
   hub mirrored is the member taking it back: the hub records that leaf as a
   ``federated.restricted`` version (no metadata) and takes the dataset out of search;
   `registry.datasets.policy` then hides every version of it, provenance kept. Other entry
   types (``member.checkpoint`` of a member that is itself a hub) are skipped.

Records are applied one tile (at most 256 records) per transaction, together with the new
mirrored size and compact range, so a batch is applied whole or not at all. Each mirrored
version keeps its inclusion proof in the member tree at the cosigned size, computed here from
the authentic leaves and the compact range (no extra request): the start of the proof chain.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from anchoring import tlog
from anchoring.auditor.monitor import FetchError, TileClient
from anchoring.jcs import CanonicalizationError, canonicalize
from registry.datasets.actions import dataset_row, slug_base, unique_slugs
from registry.datasets.models import Change, Dataset, DatasetVersion, State, Visibility
from registry.datasets.policy import RESTRICTED
from registry.datasets.search_documents import search_document
from registry.datasets.validation import metadata_errors
from registry.federation.models import (
    FederatedEntry,
    FederationMember,
    MemberStatus,
    MirrorRefusal,
)
from registry.organizations.models import Organization
from registry.state import RegistryState
from registry.timefmt import utc_now

log = logging.getLogger(__name__)
MAX_METADATA_BYTES = 1 << 20
DATASET_TYPES = {Change.PUBLISHED.value, Change.UPDATED.value, Change.WITHDRAWN.value}
_NETWORK_ERRORS = (FetchError, OSError, http.client.HTTPException)
_NAMESPACE = uuid.UUID("6f1d3c2e-8a55-4f0b-9a63-5e8f3b1d2c40")


@dataclass
class MirrorReport:
    origin: str
    start: int = 0
    end: int = 0
    mirrored: int = 0
    skipped: int = 0
    refused: list[tuple[int | None, str]] = field(default_factory=list)
    restricted: int = 0
    error: str | None = None

    def summary(self) -> str:
        if self.error:
            return f"error: {self.error}"
        return (f"[{self.start}, {self.end}): mirrored {self.mirrored}, skipped {self.skipped}, "
                f"refused {len(self.refused)}, restricted {self.restricted}")


@dataclass(frozen=True)
class _Accepted:
    index: int
    entry: bytes
    data: dict[str, Any]
    metadata: dict[str, Any]
    path: list[bytes]
    restricted: bool = False  # a later non-public version: the hub stops showing the dataset


def hub_dataset_id(origin: str, member_dataset: str) -> str:
    """A member cannot choose the hub's id for its dataset (no takeover of hub datasets)."""
    return str(uuid.uuid5(_NAMESPACE, f"{origin}\n{member_dataset}"))


def member_organization_id(origin: str) -> str:
    return "fed-" + hashlib.sha256(origin.encode()).hexdigest()[:16]


def _b64list(hashes: list[bytes]) -> str:
    return json.dumps([base64.b64encode(h).decode() for h in hashes])


def _edge(text: str) -> list[bytes]:
    return [base64.b64decode(h) for h in json.loads(text or "[]")]


class Mirror:
    """Follows each active member's log up to its cosigned size and copies its public entries."""

    def __init__(self, state: RegistryState, timeout: float = 10.0, workers: int = 8) -> None:
        self.state = state
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ndr-mirror")

    # -- one member ---------------------------------------------------------------------------

    def run_member(self, origin: str) -> MirrorReport:
        report = MirrorReport(origin)
        with self.state.db.read() as session:
            member = session.get(FederationMember, origin)
            if member is None or member.status != MemberStatus.ACTIVE or not member.url \
                    or member.witnessed_root is None:
                report.error = "not an active member with a URL and a cosigned checkpoint"
                return report
            start, end = int(member.mirrored_size), int(member.witnessed_size)
            root, edge, url = bytes(member.witnessed_root), _edge(member.mirrored_edge), \
                member.url
        report.start, report.end = start, end
        if start >= end:
            return report
        client = TileClient(url.rstrip("/") + "/log/", timeout=self.timeout)
        api = TileClient(url.rstrip("/") + "/", timeout=self.timeout)
        try:
            leaves = self._authentic_leaves(client, start, end, edge, root)
        except _NETWORK_ERRORS as exc:
            report.error = f"{origin}: {exc}"
            return report
        if leaves is None:
            reason = (f"the member's hash tiles for [{start}, {end}) do not reproduce the "
                      f"cosigned root at size {end}; nothing applied")
            self._refuse_range(origin, reason)
            report.refused.append((None, reason))
            return report
        appended = tlog.append_leaves(start, edge, leaves)
        stored = dict(zip(tlog.right_edge_indexes(start), edge, strict=True))
        stored.update(appended.stored)

        def read(indexes: list[int]) -> list[bytes]:
            return [stored[i] for i in indexes]

        size = start
        for tile in _entry_tiles(start, end):
            first = tile.n * tlog.TILE_WIDTH
            try:
                accepted, refused, skipped = self._check_tile(client, api, tile, first, start,
                                                              leaves, read, end)
            except _NETWORK_ERRORS as exc:
                report.error = f"{origin}: {exc}"  # a network failure: stop, retry next run
                return report
            new_size = first + tile.width
            new_edge = tlog.extend_right_edge(size, edge, leaves[size - start:new_size - start])
            applied = self._apply(origin, accepted, refused, size, new_size, new_edge, end)
            if applied is None:
                report.error = "another process is mirroring this member; stopped"
                return report
            size, edge = new_size, new_edge
            restrictions = sum(1 for a in accepted if a.restricted)
            report.mirrored += len(accepted) - restrictions
            report.restricted += applied
            report.skipped += skipped + restrictions - applied  # never public here
            report.refused += refused
        return report

    def _authentic_leaves(self, client: TileClient, start: int, end: int, edge: list[bytes],
                          root: bytes) -> list[bytes] | None:
        leaves: list[bytes] = []
        for tile in _entry_tiles(start, end):
            hashes = tlog.Tile(level=0, n=tile.n, width=tile.width)
            data = client.get(hashes.path())
            try:
                tile_leaves = tlog.split_hash_tile(data, tile.width)
            except tlog.ProofError:
                return None
            skip = max(0, start - tile.n * tlog.TILE_WIDTH)
            leaves.extend(tile_leaves[skip:])
        if tlog.root_from_right_edge(tlog.extend_right_edge(start, edge, leaves)) != root:
            return None
        return leaves

    def _check_tile(self, client: TileClient, api: TileClient, tile: tlog.Tile, first: int,
                    start: int, leaves: list[bytes],
                    read: Callable[[list[int]], list[bytes]], end: int
                    ) -> tuple[list[_Accepted], list[tuple[int | None, str]], int]:
        accepted: list[_Accepted] = []
        refused: list[tuple[int | None, str]] = []
        skipped = 0
        wanted = range(max(first, start), first + tile.width)
        try:
            entries = tlog.split_entry_bundle(client.get(tile.path()))
        except tlog.ProofError as exc:
            refused += [(i, f"malformed entry bundle: {exc}") for i in wanted]
            return accepted, refused, skipped
        if len(entries) != tile.width:
            refused += [(i, f"entry bundle has {len(entries)} entries, not {tile.width}")
                        for i in wanted]
            return accepted, refused, skipped
        candidates: list[tuple[int, bytes, dict[str, Any]]] = []
        for index in wanted:
            entry = entries[index - first]
            if tlog.hash_leaf(entry) != leaves[index - start]:
                refused.append((index, "entry does not hash to its leaf (tampered)"))
                continue
            try:
                data = json.loads(entry)
            except ValueError:
                refused.append((index, "entry is not JSON"))
                continue
            if not isinstance(data, dict) or data.get("type") not in DATASET_TYPES:
                skipped += 1
                continue
            problem = _entry_problem(data)
            if data.get("visibility", "public") != "public" or data.get("v") != 1:
                # Government-only (or salted v2): its metadata is never fetched nor mirrored,
                # but the entry itself says the dataset is no longer public: a restriction.
                if problem is None:
                    accepted.append(_Accepted(index, entry, data, {},
                                              tlog.prove_record(end, index, read),
                                              restricted=True))
                else:
                    skipped += 1
                continue
            if problem:
                refused.append((index, problem))
                continue
            candidates.append((index, entry, data))
        # A version its publisher restricted later in this same tile is not fetched: the member
        # no longer serves it, and the hub would hide it at once anyway.
        taken_back = {}
        for item in accepted:
            taken_back[item.data["dataset"]] = max(taken_back.get(item.data["dataset"], 0),
                                                   int(item.data["version"]))
        kept = [c for c in candidates if int(c[2]["version"]) > taken_back.get(
            c[2]["dataset"], 0)]
        skipped += len(candidates) - len(kept)
        candidates = kept
        # Metadata documents are fetched in parallel (keep-alive connection per thread); a
        # network failure on any of them aborts the tile before anything is written.
        fetched = list(self._pool.map(lambda c: self._metadata(api, c[2]), candidates))
        for (index, entry, data), (metadata, problem) in zip(candidates, fetched, strict=True):
            if problem:
                refused.append((index, problem))
                continue
            accepted.append(_Accepted(index, entry, data, metadata or {},
                                      tlog.prove_record(end, index, read)))
        return accepted, refused, skipped

    def _metadata(self, client: TileClient, data: dict[str, Any]
                  ) -> tuple[dict[str, Any] | None, str | None]:
        path = f"api/v1/datasets/{data['dataset']}/versions/{data['version']}"
        try:
            body = client.get(path)
        except FetchError as exc:
            if "HTTP 404" in str(exc) or "HTTP 410" in str(exc):
                return None, f"the member does not serve this public version: {exc}"
            raise
        if len(body) > MAX_METADATA_BYTES:
            return None, f"metadata larger than {MAX_METADATA_BYTES} bytes"
        try:
            metadata = json.loads(body)["metadata"]
            digest = hashlib.sha256(canonicalize(metadata)).hexdigest()
        except (ValueError, KeyError, TypeError, CanonicalizationError) as exc:
            return None, f"metadata is not readable JSON: {exc}"
        if digest != data["metadata_sha256"]:
            return None, "metadata does not match the entry's metadata_sha256"
        errors = metadata_errors(metadata, "/metadata")
        if errors:
            return None, "metadata fails the dataset schema: " + "; ".join(
                f"{e.pointer}: {e.detail}" for e in errors[:3])
        return metadata, None

    # -- storing ------------------------------------------------------------------------------

    def _refuse_range(self, origin: str, reason: str) -> None:
        with self.state.db.write() as session:
            session.add(MirrorRefusal(origin=origin, leaf_index=None, reason=reason))

    def _apply(self, origin: str, accepted: list[_Accepted],
               refused: list[tuple[int | None, str]], old_size: int, new_size: int,
               new_edge: list[bytes], checkpoint_size: int) -> int | None:
        """One transaction: the tile's records, its refusals and the advanced mirror state.
        Returns how many restrictions it recorded; None (nothing written) if another process
        advanced the mirror meanwhile."""
        with self.state.db.write() as session:
            member = session.scalar(select(FederationMember).where(
                FederationMember.origin == origin).with_for_update())
            if member is None or int(member.mirrored_size) != old_size:
                return None
            organization = self._organization(session, member)
            docs, hidden, restrictions = self._store_batch(session, origin, organization,
                                                           accepted, checkpoint_size)
            for index, reason in refused:
                session.add(MirrorRefusal(origin=origin, leaf_index=index, reason=reason))
            member.mirrored_size = new_size
            member.mirrored_edge = _b64list(new_edge)
            if docs:
                self.state.search.index(session, docs)
            if hidden:
                self.state.search.remove(session, hidden)
        return restrictions

    def _organization(self, session: Session, member: FederationMember) -> Organization:
        org_id = member.organization_id or member_organization_id(member.origin)
        organization = session.get(Organization, org_id)
        if organization is None:
            organization = Organization(id=org_id, name_zh=member.origin, name_en=member.origin,
                                        kind="other",
                                        description=f"federated member {member.origin}")
            session.add(organization)
            session.flush()
        member.organization_id = org_id
        return organization

    def _store_batch(self, session: Session, origin: str, organization: Organization,
                     records: list[_Accepted], checkpoint_size: int
                     ) -> tuple[list[dict[str, Any]], list[str], int]:
        """Insert a tile's versions with a few statements (not one ORM flush per record).

        Returns the search documents to index, the ids of datasets to take out of search
        (restricted by their publisher, see `registry.datasets.policy`) and how many
        restricting leaves were recorded."""
        if not records:
            return [], [], 0
        ids = {hub_dataset_id(origin, str(r.data["dataset"])) for r in records}
        datasets = {d.id: d for d in session.scalars(select(Dataset).where(Dataset.id.in_(ids)))}
        existing = {(row[0], row[1]) for row in session.execute(
            select(DatasetVersion.dataset_id, DatasetVersion.version)
            .where(DatasetVersion.dataset_id.in_(ids)))}
        bases: dict[str, str] = {}  # new hub dataset id -> slug base
        for record in records:
            dataset_id = hub_dataset_id(origin, str(record.data["dataset"]))
            if record.restricted:
                continue  # never creates a hub dataset
            if dataset_id not in datasets and dataset_id not in bases:
                bases[dataset_id] = slug_base(record.metadata, "dataset")
        wanted = [(base, dataset_id) for dataset_id, base in bases.items()]
        slugs = dict(zip(bases, unique_slugs(session, wanted), strict=True)) if wanted else {}
        now = utc_now()
        new_datasets: dict[str, Dataset] = {}
        versions, provenance, latest = [], [], {}
        hidden: set[str] = set()
        restrictions = 0
        for record in records:
            data, metadata = record.data, record.metadata
            dataset_id = hub_dataset_id(origin, str(data["dataset"]))
            number = int(data["version"])
            if (dataset_id, number) in existing:
                continue  # already mirrored (a re-run after a crash between tiles)
            state = State.WITHDRAWN if data["type"] == Change.WITHDRAWN else State.PUBLISHED
            dataset = datasets.get(dataset_id) or new_datasets.get(dataset_id)
            if record.restricted:
                if dataset is None:
                    continue  # never public here: nothing to take back
                existing.add((dataset_id, number))
                restrictions += 1
                versions.append(_restriction_row(origin, record, dataset, now))
                provenance.append(_provenance_row(origin, record, dataset_id, checkpoint_size,
                                                  now))
                if number >= dataset.current_version:
                    dataset.current_version = dataset.released_version = number
                    dataset.state = dataset.released_state = State.WITHDRAWN.value
                    dataset.visibility = Visibility.GOVERNMENT.value
                    dataset.title = dataset.slug[:500]  # the hub holds no metadata of it now
                    dataset.modified_at = now
                    latest.pop(dataset_id, None)
                    hidden.add(dataset_id)
                continue
            existing.add((dataset_id, number))
            if dataset is None:
                slug = slugs[dataset_id]
                dataset = Dataset(id=dataset_id, slug=slug, organization_id=organization.id,
                                  external_id=f"{origin}#{data['dataset']}"[:500],
                                  state=state.value, visibility="public",
                                  current_version=number, title=slug, created_at=now,
                                  modified_at=now)
                new_datasets[dataset_id] = dataset
            if number >= dataset.current_version:
                title = metadata.get("title", {})
                dataset.current_version = dataset.released_version = number
                dataset.state = dataset.released_state = state.value
                dataset.visibility = Visibility.PUBLIC.value  # public again, if restricted
                hidden.discard(dataset_id)
                dataset.title = (title.get("zh") or title.get("en") or dataset.slug)[:500]
                dataset.modified_at = now
                latest[dataset_id] = (dataset, number, state, metadata)
            versions.append({
                # Not "dataset.*": this hub did not log the version; a member.checkpoint leaf
                # covers it. The self-audit holds logged kinds to a leaf of this log.
                "dataset_id": dataset_id, "version": number,
                "change": "federated." + str(data["type"]).split(".", 1)[1],
                "state": state.value, "visibility": "public", "slug": dataset.slug,
                "metadata_json": canonicalize(metadata).decode("utf-8"),
                "metadata_sha256": str(data["metadata_sha256"]), "leaf_index": None,
                "receipt": None,
                "note": f"federated from {origin}, leaf {record.index}",
                "created_by": f"federation:{origin}"[:80], "created_at": now})
            provenance.append(_provenance_row(origin, record, dataset_id, checkpoint_size, now))
        if new_datasets:
            session.execute(insert(Dataset), [dataset_row(d) for d in new_datasets.values()])
        session.flush()  # updates of datasets already on the hub
        if versions:
            session.execute(insert(DatasetVersion), versions)
            session.execute(insert(FederatedEntry), provenance)
        return [search_document(dataset, version=number, state=state.value,
                                visibility="public", metadata=metadata,
                                organization=organization, modified=now)
                for dataset, number, state, metadata in latest.values()], sorted(hidden), \
            restrictions

    # -- all members --------------------------------------------------------------------------

    def run_once(self) -> dict[str, str]:
        with self.state.db.read() as session:
            origins = list(session.scalars(select(FederationMember.origin).where(
                FederationMember.status == MemberStatus.ACTIVE,
                FederationMember.url.is_not(None))))
        outcomes = {}
        for origin in origins:
            try:
                outcomes[origin] = self.run_member(origin).summary()
            except Exception as exc:  # one member's trouble never stops the others
                log.exception("mirroring %s failed", origin)
                outcomes[origin] = f"error: {exc}"
        return outcomes


def _provenance_row(origin: str, record: _Accepted, dataset_id: str, checkpoint_size: int,
                    now: datetime) -> dict[str, Any]:
    data = record.data
    return {"dataset_id": dataset_id, "version": int(data["version"]), "origin": origin,
            "member_dataset_id": str(data["dataset"])[:64],
            "member_organization": str(data.get("organization", ""))[:64] or None,
            "leaf_index": record.index, "entry": record.entry.decode("utf-8"),
            "checkpoint_size": checkpoint_size, "inclusion_path": _b64list(record.path),
            "mirrored_at": now}


def _restriction_row(origin: str, record: _Accepted, dataset: Dataset, now: datetime
                     ) -> dict[str, Any]:
    """The hub's record of the member's restricting leaf: no metadata (the hub never had
    it), withdrawn, government-only, so `policy` hides every version of the dataset."""
    return {"dataset_id": dataset.id, "version": int(record.data["version"]),
            "change": RESTRICTED, "state": State.WITHDRAWN.value,
            "visibility": Visibility.GOVERNMENT.value, "slug": dataset.slug,
            # The member's commitment (salted) stays in the provenance row's entry.
            "metadata_json": "{}", "metadata_sha256": hashlib.sha256(b"{}").hexdigest(),
            "leaf_index": None, "receipt": None,
            "note": f"the publisher restricted this dataset: federated from {origin}, leaf "
                    f"{record.index}",
            "created_by": f"federation:{origin}"[:80], "created_at": now}


def _entry_problem(data: dict[str, Any]) -> str | None:
    dataset, version, digest = data.get("dataset"), data.get("version"), data.get(
        "metadata_sha256")
    if not isinstance(dataset, str) or not dataset or len(dataset) > 64 \
            or not all(c.isalnum() or c in "-_." for c in dataset):
        return "entry names no valid dataset id"
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version < 2**31:
        return "entry has no valid version"
    if not isinstance(digest, str) or len(digest) != 64 or any(
            c not in "0123456789abcdef" for c in digest):
        return "entry has no valid metadata_sha256"
    return None


def _entry_tiles(start: int, end: int) -> list[tlog.Tile]:
    tiles = []
    n = start // tlog.TILE_WIDTH
    while n * tlog.TILE_WIDTH < end:
        tiles.append(tlog.Tile(level=tlog.ENTRIES_LEVEL, n=n,
                               width=min(tlog.TILE_WIDTH, end - n * tlog.TILE_WIDTH)))
        n += 1
    return tiles


class MirrorLoop:
    """Background loop: mirror every member every `interval` seconds."""

    def __init__(self, mirror: Mirror, interval: float = 5.0) -> None:
        self.mirror = mirror
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.mirror.run_once()
                self.last_error = None
            except Exception as exc:
                self.last_error = str(exc)
                log.exception("mirroring failed")
            self._stop.wait(self._interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ndr-mirror", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
