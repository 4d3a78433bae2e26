"""Publishing actions: one function per verb, each starting with its permission check.

Every write goes through `record_versions`, which in the caller's single transaction inserts
the immutable versions, appends one log leaf per published/updated/withdrawn version (drafts are
not logged: nobody outside the organisation may learn of them), and updates the search index.
If anything raises, the transaction rolls back and none of it happened.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Executable, Select, insert, select
from sqlalchemy.orm import Session

from anchoring.auditor import entry as entry_format
from anchoring.log_store import PlannedAppend
from registry.auth.principal import Principal, require_role
from registry.database import pipelined, serialize_catalogue_writes
from registry.datasets.canonical import (
    canonical_json,
    canonical_metadata,
    sha256_hex,
)
from registry.datasets.merge_patch import merge_patch
from registry.datasets.models import (
    Change,
    Dataset,
    DatasetVersion,
    IdempotencyRecord,
    State,
    Visibility,
)
from registry.datasets.policy import (
    DISCARDED,
    RESTRICTED_NOTE,
    can_see_version,
    is_restricted,
    shown_version_number,
)
from registry.datasets.search_documents import pre_analysed, search_document
from registry.datasets.validation import require_valid_metadata, require_valid_request
from registry.organizations.models import Organization, Role
from registry.problems import (
    FieldError,
    Problem,
    bad_request,
    conflict,
    gone,
    not_found,
    precondition_failed,
    validation_failed,
)
from registry.timefmt import rfc3339, utc_now

LOGGED_CHANGES = {Change.PUBLISHED, Change.UPDATED, Change.WITHDRAWN}


class LogLike(Protocol):
    def head_for_append_statements(self, session: Session) -> list[Executable]: ...
    def use_head_for_append(self, session: Session, rows: Sequence[Sequence[Any]]) -> None: ...
    def plan_append(self, session: Session, entries: Sequence[bytes]) -> PlannedAppend: ...
    def write_append(self, session: Session, planned: PlannedAppend) -> None: ...
    def sign_receipt(self, index: int, leaf_hash: bytes, when: datetime) -> str: ...


class SearchLike(Protocol):
    updates_only_write: bool

    def index(self, session: Session, docs: Any) -> None: ...
    def remove(self, session: Session, dataset_ids: Any) -> None: ...


@dataclass(frozen=True)
class Services:
    """What a write needs besides the session: the log to append to, the index to update."""

    log: LogLike
    search: SearchLike


@dataclass
class VersionChange:
    """One version about to be recorded."""

    dataset: Dataset
    organization: Organization
    version: int
    change: str
    state: State
    visibility: Visibility
    slug: str
    metadata: dict[str, Any]
    created_by: str
    now: datetime
    note: str | None = None
    index_as_released: bool = True  # False for a draft on top of a published dataset
    new_dataset: bool = False        # the dataset row is inserted with this version
    analysed: dict[str, str] | None = None  # index text computed ahead (bulk import)
    canonical: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Recorded:
    dataset: Dataset
    version: DatasetVersion
    created: bool


# ---------------------------------------------------------------- reading


ID_SHAPE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                      r"[0-9a-fA-F]{12}$")


def looks_like_id(ref: str) -> bool:
    """Dataset ids are UUIDs; a slug of that shape could shadow another dataset's id."""
    return bool(ID_SHAPE.match(ref))


def find_dataset(session: Session, ref: str, *, for_update: bool = False) -> Dataset | None:
    """By id, then by slug — never "either" in one query, where the database picks the row.

    An id-shaped reference is only ever an id, so no slug can take over another dataset's URL.
    """
    for column in (Dataset.id, Dataset.slug):
        if column is Dataset.slug and looks_like_id(ref):
            return None
        query = select(Dataset).where(column == ref)
        if for_update:
            query = query.with_for_update()
        dataset = session.scalar(query)
        if dataset is not None:
            return dataset
    return None


MAX_VERSION = 2**31 - 1  # versions are 32-bit integers in the database


def get_version(session: Session, dataset: Dataset, number: int) -> DatasetVersion | None:
    if not 1 <= number <= MAX_VERSION:  # beyond the column's range: no such version
        return None
    return session.get(DatasetVersion, (dataset.id, number))


def dataset_show(session: Session, principal: Principal | None,
                 ref: str) -> tuple[Dataset, DatasetVersion]:
    dataset = find_dataset(session, ref)
    number = shown_version_number(principal, dataset) if dataset else None
    version = get_version(session, dataset, number) if dataset and number else None
    if dataset is not None and version is not None and is_restricted(dataset, version):
        raise gone(RESTRICTED_NOTE["en"], RESTRICTED_NOTE["zh"])  # a notice, no metadata
    if dataset is None or version is None or not can_see_version(principal, dataset, version):
        raise not_found(f"no dataset {ref!r}")
    return dataset, version


def dataset_versions(session: Session, principal: Principal | None,
                     ref: str) -> tuple[Dataset, list[DatasetVersion]]:
    dataset, _ = dataset_show(session, principal, ref)
    rows = session.scalars(select(DatasetVersion).where(
        DatasetVersion.dataset_id == dataset.id).order_by(DatasetVersion.version))
    return dataset, [v for v in rows if can_see_version(principal, dataset, v)]


def dataset_version(session: Session, principal: Principal | None, ref: str,
                    number: int) -> tuple[Dataset, DatasetVersion]:
    dataset, _ = dataset_show(session, principal, ref)
    version = get_version(session, dataset, number)
    if version is None or not can_see_version(principal, dataset, version):
        raise not_found(f"dataset {ref!r} has no version {number}")
    return dataset, version


def version_metadata(version: DatasetVersion) -> dict[str, Any]:
    return json.loads(version.metadata_json)


def version_json(dataset: Dataset, version: DatasetVersion, *,
                 latest_visible: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": dataset.id,
        "slug": version.slug,
        "organization": dataset.organization_id,
        "version": version.version,
        "latest_version": latest_visible if latest_visible is not None else version.version,
        "state": version.state,
        "visibility": version.visibility,
        "change": version.change,
        "created": rfc3339(version.created_at),
        "note": version.note,
        "metadata": version_metadata(version),
        "metadata_sha256": version.metadata_sha256,
        "log": None,
    }
    if version.leaf_index is not None and version.log_entry is not None:
        body["log"] = {
            "index": version.leaf_index,
            "leaf_hash": base64.b64encode(entry_format.leaf_hash(version.log_entry)).decode(),
            "entry": version.log_entry.decode("utf-8"),
            "receipt": version.receipt,
        }
        if version.metadata_salt is not None:  # v2: the reader may see it, so may check it
            body["log"]["metadata_salt"] = version.metadata_salt
    return body


def etag_for(version: DatasetVersion | int) -> str:
    number = version if isinstance(version, int) else version.version
    return f'"v{number}"'


def check_if_match(if_match: str | None, dataset: Dataset) -> None:
    """Optimistic concurrency: the client names the version its change is based on."""
    if if_match is None:
        return
    tags = [t.strip().removeprefix("W/") for t in if_match.split(",")]
    if "*" in tags or etag_for(dataset.current_version) in tags:
        return
    latest = etag_for(dataset.current_version)
    raise precondition_failed(f"If-Match {if_match} does not match the latest version {latest}")


# ---------------------------------------------------------------- slugs

_NON_SLUG = re.compile(r"[^a-z0-9]+")


def slug_base(metadata: dict[str, Any], fallback: str) -> str:
    title = metadata.get("title", {})
    text = (title.get("en") or fallback or "").lower()
    base = _NON_SLUG.sub("-", text).strip("-")[:80].strip("-")
    if looks_like_id(base):  # an English title that is itself a UUID
        base = f"dataset-{base}"
    return base or "dataset"


def require_slug_not_id_shaped(slug: str) -> None:
    if looks_like_id(slug):
        raise validation_failed([FieldError(
            "must not look like a dataset id (the 8-4-4-4-12 form of a UUID)", "/slug")])


def slugs_in_use(session: Session, slugs: set[str]) -> set[str]:
    return set(session.scalars(select(Dataset.slug).where(Dataset.slug.in_(slugs)))) if slugs \
        else set()


def unique_slugs(session: Session, wanted: list[tuple[str, str]],
                 also_taken: set[str] | None = None,
                 known: dict[str, bool] | None = None) -> list[str]:
    """Pick a free slug for each (base, dataset id): the base, else base + a piece of the id.
    `also_taken`: slugs about to be written in the same batch. `known`: slugs already looked
    up in this transaction (True: in use), so a batch asks the database once for all."""
    bases = {base for base, _ in wanted}
    known = known or {}
    taken = slugs_in_use(session, bases - known.keys())
    taken |= {base for base in bases if known.get(base)}
    taken |= also_taken or set()
    out = []
    for base, dataset_id in wanted:
        slug = base if base not in taken else f"{base[:100]}-{dataset_id[:8]}"
        taken.add(slug)
        out.append(slug)
    return out


def require_free_slug(session: Session, slug: str, dataset_id: str | None = None,
                      known: dict[str, bool] | None = None) -> None:
    if known is not None and known.get(slug) is False:
        return  # looked up for the whole batch, in this transaction: nobody has it
    owner = session.scalar(select(Dataset.id).where(Dataset.slug == slug))
    if owner is not None and owner != dataset_id:
        raise conflict(f"the slug {slug!r} is taken",
                       errors=[FieldError("is already used by another dataset", "/slug")])


# ---------------------------------------------------------------- recording


def metadata_salt_for(change: VersionChange) -> bytes | None:
    """Government-only versions commit to salted metadata (entry v2); public ones need not."""
    return entry_format.new_salt() if change.visibility == Visibility.GOVERNMENT else None


def log_entry_for(change: VersionChange, canonical: bytes, salt: bytes | None) -> bytes:
    """The version's log entry, built by the auditor's own format module."""
    return entry_format.dataset_entry(
        kind=change.change, dataset=change.dataset.id, version=change.version,
        organization=change.organization.id,
        metadata_sha256=entry_format.metadata_commitment(canonical, salt),
        time=rfc3339(change.now), visibility=change.visibility.value, salted=salt is not None)


def record_versions(session: Session, services: Services, changes: list[VersionChange], *,
                    receipts: bool = True) -> list[DatasetVersion]:
    """Insert versions, append their log leaves and index them, all in the caller's transaction.

    Rows go in with Core executemany, not ORM objects: a bulk import records thousands of
    versions per transaction and ORM instrumentation was a fifth of its time. Receipts (one
    Ed25519 signature each) are for interactive writes; a bulk import's leaves are covered by
    the next checkpoint a second later.
    """
    hashes = []
    for change in changes:
        if not change.canonical:
            change.canonical = canonical_metadata(change.metadata)
        hashes.append(sha256_hex(change.canonical))
    logged = [i for i, c in enumerate(changes) if c.change in LOGGED_CHANGES]
    salts = {i: metadata_salt_for(changes[i]) for i in logged}
    entries = {i: log_entry_for(changes[i], changes[i].canonical, salts[i]) for i in logged}
    append = services.log.plan_append(session, [entries[i] for i in logged])
    leaf_by_change = dict(zip(logged, append.leaves, strict=True))

    rows = []
    for i, change in enumerate(changes):
        leaf = leaf_by_change.get(i)
        rows.append({
            "dataset_id": change.dataset.id, "version": change.version, "change": change.change,
            "state": change.state.value, "visibility": change.visibility.value,
            "slug": change.slug, "metadata_json": change.canonical.decode("utf-8"),
            "metadata_sha256": hashes[i],
            "metadata_salt": salts[i].hex() if leaf and salts[i] else None,
            "leaf_index": leaf.index if leaf else None,
            "receipt": services.log.sign_receipt(leaf.index, leaf.leaf_hash,
                                                 change.now.replace(tzinfo=UTC))
            if leaf and receipts else None,
            "note": change.note, "created_by": change.created_by, "created_at": change.now})
        _advance_dataset(change)
    session.flush()  # updates of existing datasets (the ORM reads their row counts)
    new_datasets = [dataset_row(c.dataset) for c in changes if c.new_dataset]
    docs, removed = _search_updates(changes)
    feed_only = services.search.updates_only_write
    # Everything read and computed above; below only statements, nothing read back.
    with pipelined(session):
        services.log.write_append(session, append)
        if new_datasets:  # on the tables: the ORM's bulk insert only added its own cost
            session.execute(insert(Dataset.__table__), new_datasets)
        session.execute(insert(DatasetVersion.__table__), rows)
        if feed_only:
            _update_search(session, services, docs, removed)
    if not feed_only:
        _update_search(session, services, docs, removed)  # this engine reads before it writes
    if len(rows) > 16:
        return []
    out = [DatasetVersion(**row) for row in rows]
    for i, version in enumerate(out):  # the one stored copy is log_entries'; same bytes
        version.log_entry = entries.get(i) if leaf_by_change.get(i) else None
    return out


def dataset_row(dataset: Dataset) -> dict[str, Any]:
    return {column: getattr(dataset, column) for column in DATASET_COLUMNS}


DATASET_COLUMNS = tuple(c.key for c in Dataset.__table__.columns)


def _advance_dataset(change: VersionChange) -> None:
    dataset = change.dataset
    dataset.current_version = change.version
    dataset.state = change.state.value
    dataset.visibility = change.visibility.value
    dataset.slug = change.slug
    dataset.modified_at = change.now
    title = change.metadata.get("title", {})
    dataset.title = (title.get("zh") or title.get("en") or change.slug)[:500]
    if change.change in LOGGED_CHANGES:
        dataset.released_version = change.version
        dataset.released_state = change.state.value


def _search_updates(changes: list[VersionChange]) -> tuple[list[dict[str, Any]], list[str]]:
    """The index documents and removals of recorded changes. Built before the batch's
    statements are pipelined: an organisation's ancestry may be loaded from the database."""
    docs, removed = [], []
    ancestries: dict[str, list[Organization]] = {}
    for change in changes:
        if change.change == DISCARDED:
            removed.append(change.dataset.id)
        elif change.index_as_released:
            org = change.organization
            if org.id not in ancestries:
                ancestries[org.id] = org.ancestry()
            docs.append(search_document(
                change.dataset, version=change.version, state=change.state.value,
                visibility=change.visibility.value, metadata=change.metadata,
                organization=org, modified=change.now, ancestry=ancestries[org.id],
                analysed=change.analysed))
    return docs, removed


def _update_search(session: Session, services: Services, docs: list[dict[str, Any]],
                   removed: list[str]) -> None:
    if docs:
        services.search.index(session, docs)
    if removed:
        services.search.remove(session, removed)


# ---------------------------------------------------------------- writing


def _organization(session: Session, organization_id: str) -> Organization:
    organization = session.get(Organization, organization_id)
    if organization is None:
        raise not_found(f"no organisation {organization_id!r}")
    return organization


@dataclass(frozen=True)
class CreateRequest:
    """A create that passed every check needing no database (permission, request shape,
    metadata schema): done in the request thread, before the write is queued for a batch."""

    principal: Principal
    organization_id: str
    body: dict[str, Any]
    canonical: bytes = b""                     # the metadata's canonical JSON
    analysed: dict[str, str] | None = None     # its search index text


def prepare_create(principal: Principal | None, body: Any) -> CreateRequest:
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object",
                          errors=[FieldError("must be an object", "")])
    organization_id = body.get("organization") or (principal.organization_id if principal
                                                    else None)
    if principal is not None and organization_id is None:
        raise bad_request("name the organisation to publish for",
                          errors=[FieldError("is required for operator tokens",
                                             "/organization")])
    who = require_role(principal, organization_id or "", Role.EDITOR)
    require_valid_request("create", body)
    require_valid_metadata(body["metadata"])
    # Canonical JSON and index text are computed here too, outside the writers' turn.
    return CreateRequest(principal=who, organization_id=organization_id or "", body=body,
                         canonical=canonical_metadata(body["metadata"]),
                         analysed=pre_analysed(body["metadata"]))


# ---------------------------------------------------------------- batches

class ClaimedInBatch(Exception):
    """An earlier item of the same batch is about to write what this item needs (its
    dataset, slug, external id or Idempotency-Key): the item waits for the next batch, where
    it sees that write committed and is judged against it as usual."""


@dataclass
class BatchClaims:
    """What the planned items of one batch will write; the database cannot show it yet."""

    slugs: set[str] = field(default_factory=set)
    datasets: set[str] = field(default_factory=set)
    # slugs the batch's items want, looked up once under the write lock (True: in use)
    slugs_in_db: dict[str, bool] = field(default_factory=dict)
    external_ids: set[tuple[str, str]] = field(default_factory=set)
    keys: set[tuple[str, str]] = field(default_factory=set)

    def look_up_slugs(self, session: Session, slugs: set[str]) -> None:
        """Ask the database once for every slug the batch's items want: on PostgreSQL each
        item asking alone was a round trip taken while the batch held the write lock."""
        self.note_slugs(slugs, slugs_in_use(session, slugs - self.slugs_in_db.keys()))

    @staticmethod
    def slugs_statement(slugs: set[str]) -> Select[tuple[str]]:
        """`look_up_slugs` as a statement, for a batch that sends it with its other reads."""
        return select(Dataset.slug).where(Dataset.slug.in_(slugs))

    def note_slugs(self, asked: set[str], in_use: Iterable[str]) -> None:
        """What the database said about `asked`: `in_use` are taken, the rest are free."""
        used = set(in_use)
        self.slugs_in_db.update({slug: slug in used for slug in asked})

    @staticmethod
    def check(claims: BatchClaims | None, **wanted: Any) -> None:
        """Raise ClaimedInBatch when any wanted value is already claimed; else claim them."""
        if claims is None:
            return
        pairs = [(getattr(claims, name), value) for name, value in wanted.items()
                 if value is not None]
        if any(value in claimed for claimed, value in pairs):
            raise ClaimedInBatch(str(wanted))
        for claimed, value in pairs:
            claimed.add(value)


@dataclass
class Plan:
    """One write, checked and ready to record: its new versions (none for an unchanged
    PATCH or an idempotent replay) and how its answer is made once they are recorded."""

    changes: list[VersionChange]
    finish: Callable[[Session, list[DatasetVersion]], Answer]


def record_plans(session: Session, services: Services, plans: list[Plan]) -> list[Answer]:
    """Record the versions of many plans together (one log append and one index update per
    `RECORD_CHUNK` versions), then make each plan's answer in the same transaction."""
    changes = [change for plan in plans for change in plan.changes]
    versions: list[DatasetVersion] = []
    for start in range(0, len(changes), RECORD_CHUNK):
        versions += record_versions(session, services, changes[start:start + RECORD_CHUNK])
    if len(versions) != len(changes):  # record_versions returns versions for small calls only
        raise RuntimeError("record_versions returned fewer versions than it recorded")
    answers, used = [], 0
    for plan in plans:
        answers.append(plan.finish(session, versions[used:used + len(plan.changes)]))
        used += len(plan.changes)
    return answers


RECORD_CHUNK = 16  # record_versions hands back the versions it recorded up to this many

# A write as the API queues it: plan it in this session (claims: the batch's, None alone).
PlanWork = Callable[[Session, BatchClaims | None], Plan]


# ---------------------------------------------------------------- writing


def plan_create(session: Session, request: CreateRequest,
                claims: BatchClaims | None = None) -> VersionChange:
    """The database half of a create: organisation, external id and slug checks, then the
    new dataset's first version (with its log leaf, when published), not yet recorded."""
    body, principal = request.body, request.principal
    serialize_catalogue_writes(session)
    organization = _organization(session, request.organization_id)
    external_id = body.get("external_id")
    BatchClaims.check(claims, external_ids=(organization.id, external_id) if external_id
                      else None)
    if external_id and session.scalar(select(Dataset.id).where(
            Dataset.organization_id == organization.id, Dataset.external_id == external_id)):
        raise conflict(f"a dataset with external_id {external_id!r} exists; PATCH it instead",
                       errors=[FieldError("is already used in this organisation",
                                          "/external_id")])
    dataset_id = str(uuid.uuid4())
    if body.get("slug"):
        slug = body["slug"]
        require_slug_not_id_shaped(slug)
        BatchClaims.check(claims, slugs=slug)
        require_free_slug(session, slug, known=claims.slugs_in_db if claims else None)
    else:
        slug = unique_slugs(session, [(slug_base(body["metadata"], ""), dataset_id)],
                            also_taken=claims.slugs if claims else None,
                            known=claims.slugs_in_db if claims else None)[0]
        BatchClaims.check(claims, slugs=slug)
    state = State(body.get("state", State.PUBLISHED))
    now = utc_now()
    dataset = Dataset(id=dataset_id, slug=slug, organization_id=organization.id,
                      external_id=external_id, state=state.value,
                      visibility=body.get("visibility", Visibility.PUBLIC), current_version=1,
                      title=slug, created_at=now, modified_at=now)
    BatchClaims.check(claims, datasets=dataset_id)
    return VersionChange(
        dataset=dataset, organization=organization, version=1, new_dataset=True,
        change=Change.PUBLISHED if state == State.PUBLISHED else Change.DRAFTED,
        state=state, visibility=Visibility(body.get("visibility", Visibility.PUBLIC)), slug=slug,
        metadata=body["metadata"], created_by=principal.id, now=now,
        note=body.get("note"), canonical=request.canonical, analysed=request.analysed)


def record_create(session: Session, services: Services, request: CreateRequest) -> Recorded:
    change = plan_create(session, request)
    (version,) = record_versions(session, services, [change])
    return Recorded(change.dataset, version, created=True)


def dataset_create(session: Session, services: Services, principal: Principal | None,
                   body: Any) -> Recorded:
    return record_create(session, services, prepare_create(principal, body))


def _writable_dataset(session: Session, principal: Principal | None, ref: str,
                      if_match: str | None, claims: BatchClaims | None = None,
                      ) -> tuple[Dataset, DatasetVersion, Organization]:
    serialize_catalogue_writes(session)
    dataset = find_dataset(session, ref, for_update=True)
    if dataset is None:
        raise not_found(f"no dataset {ref!r}")
    latest = get_version(session, dataset, dataset.current_version)
    if latest is None or not can_see_version(principal, dataset, latest):
        raise not_found(f"no dataset {ref!r}")
    require_role(principal, dataset.organization_id, Role.EDITOR)
    BatchClaims.check(claims, datasets=dataset.id)  # If-Match is judged after the earlier one
    check_if_match(if_match, dataset)
    return dataset, latest, _organization(session, dataset.organization_id)


def plan_patch(session: Session, principal: Principal | None, ref: str, body: Any,
               if_match: str | None = None, claims: BatchClaims | None = None,
               ) -> tuple[Dataset, DatasetVersion | VersionChange]:
    """A new version: RFC 7396 merge patch of the latest version's envelope and metadata.
    Returns the latest version itself when the patch changes nothing."""
    dataset, latest, organization = _writable_dataset(session, principal, ref, if_match, claims)
    require_valid_request("patch", body)
    metadata = merge_patch(version_metadata(latest), body.get("metadata", {}))
    require_valid_metadata(metadata)
    slug = body.get("slug", dataset.slug)
    if slug != dataset.slug:
        require_slug_not_id_shaped(slug)
        BatchClaims.check(claims, slugs=slug)
        require_free_slug(session, slug, dataset.id)
    visibility = Visibility(body.get("visibility", latest.visibility))
    if "state" in body:
        state = State(body["state"])
    elif latest.state == State.WITHDRAWN:
        raise conflict("the dataset is withdrawn; send \"state\": \"published\" to publish it "
                       "again", errors=[FieldError("is required to republish", "/state")])
    else:
        state = State(latest.state)
    if (state == State.PUBLISHED and dataset.released_state == State.PUBLISHED
            and latest.state != State.DRAFT and _unchanged(latest, metadata, visibility, slug)):
        return dataset, latest
    if state == State.DRAFT and dataset.released_state == State.PUBLISHED:
        change_kind, index_now = Change.DRAFTED, False
    elif state == State.DRAFT:
        change_kind, index_now = Change.DRAFTED, True
    elif dataset.released_state == State.PUBLISHED:
        change_kind, index_now = Change.UPDATED, True
    else:
        change_kind, index_now = Change.PUBLISHED, True
    return dataset, VersionChange(
        dataset=dataset, organization=organization, version=dataset.current_version + 1,
        change=change_kind, state=state, visibility=visibility, slug=slug, metadata=metadata,
        created_by=principal.id if principal else "", now=utc_now(), note=body.get("note"),
        index_as_released=index_now)


def dataset_patch(session: Session, services: Services, principal: Principal | None, ref: str,
                  body: Any, if_match: str | None = None) -> Recorded:
    dataset, planned = plan_patch(session, principal, ref, body, if_match)
    if isinstance(planned, DatasetVersion):
        return Recorded(dataset, planned, created=False)
    (version,) = record_versions(session, services, [planned])
    return Recorded(dataset, version, created=True)


def _unchanged(latest: DatasetVersion, metadata: dict[str, Any], visibility: Visibility,
               slug: str) -> bool:
    return (latest.metadata_sha256 == sha256_hex(canonical_json(metadata))
            and latest.visibility == visibility.value and latest.slug == slug)


def plan_withdraw(session: Session, principal: Principal | None, ref: str,
                  note: str | None = None, if_match: str | None = None,
                  claims: BatchClaims | None = None) -> VersionChange:
    """Withdrawal is a new version too; a never-published draft is discarded, unlogged."""
    dataset, latest, organization = _writable_dataset(session, principal, ref, if_match, claims)
    if latest.state == State.WITHDRAWN:
        raise conflict("the dataset is already withdrawn")
    if dataset.released_state == State.PUBLISHED:
        released = get_version(session, dataset, dataset.released_version or 0)
        assert released is not None
        base, kind = released, Change.WITHDRAWN
    else:
        base, kind = latest, DISCARDED
    return VersionChange(
        dataset=dataset, organization=organization, version=dataset.current_version + 1,
        change=kind, state=State.WITHDRAWN, visibility=Visibility(base.visibility),
        slug=dataset.slug, metadata=version_metadata(base),
        created_by=principal.id if principal else "", now=utc_now(), note=note)


def dataset_withdraw(session: Session, services: Services, principal: Principal | None,
                     ref: str, note: str | None = None, if_match: str | None = None) -> Recorded:
    change = plan_withdraw(session, principal, ref, note, if_match)
    (version,) = record_versions(session, services, [change])
    return Recorded(change.dataset, version, created=True)


# ---------------------------------------------------------------- idempotency and answers


@dataclass(frozen=True)
class Answer:
    """A write's HTTP answer as plain data (no ORM objects, so it outlives its transaction):
    what the client gets, and what a retry with the same Idempotency-Key gets again."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    replayed: bool = False


Render = Callable[[Recorded], Answer]


@dataclass(frozen=True)
class IdempotencyClaim:
    """A POST with an Idempotency-Key: who sent it, the key, and a hash of the exact body."""

    principal: str
    key: str
    request_sha256: str


def idempotency_claim(principal: Principal, key: str | None,
                      raw_body: bytes) -> IdempotencyClaim | None:
    if key is None:
        return None
    if not 1 <= len(key) <= 200 or not key.isprintable():
        raise bad_request("Idempotency-Key must be 1-200 printable characters",
                          errors=[FieldError("must be 1-200 printable characters",
                                             name="Idempotency-Key")])
    return IdempotencyClaim(principal=principal.id, key=key,
                            request_sha256=hashlib.sha256(raw_body).hexdigest())


def previous_answer(session: Session, claim: IdempotencyClaim | None) -> Answer | None:
    """The stored answer when this key was used before with the same body; 422 when it was
    used with another body."""
    if claim is None:
        return None
    previous = session.get(IdempotencyRecord, (claim.principal, claim.key))
    if previous is None:
        return None
    if previous.request_sha256 != claim.request_sha256:
        raise Problem(422, "Idempotency-Key reused",
                      "this Idempotency-Key was used with a different body",
                      "idempotency-key-reused",
                      [FieldError("was used with a different request body",
                                  name="Idempotency-Key")])
    headers = {"Location": previous.location} if previous.location else {}
    return Answer(previous.status_code, json.loads(previous.response_body), headers,
                  replayed=True)


def remember_answer(session: Session, claim: IdempotencyClaim | None, answer: Answer) -> None:
    """Store the answer in the write's own transaction: both commit or vanish together."""
    if claim is None:
        return
    session.add(IdempotencyRecord(
        principal=claim.principal, key=claim.key, request_sha256=claim.request_sha256,
        status_code=answer.status,
        response_body=json.dumps(answer.body, ensure_ascii=False, default=str),
        location=answer.headers.get("Location")))
    session.flush()


def create_plan(session: Session, request: CreateRequest, claim: IdempotencyClaim | None,
                render: Render, claims: BatchClaims | None = None) -> Plan:
    """POST /datasets as a plan: a replay of the stored answer, or a new dataset whose answer
    is stored under the Idempotency-Key with it."""
    replay = previous_answer(session, claim)
    if replay is not None:
        return Plan([], lambda _session, _versions: replay)
    BatchClaims.check(claims, keys=(claim.principal, claim.key) if claim else None)
    change = plan_create(session, request, claims)

    def finish(session: Session, versions: list[DatasetVersion]) -> Answer:
        answer = render(Recorded(change.dataset, versions[0], created=True))
        remember_answer(session, claim, answer)
        return answer

    return Plan([change], finish)


def patch_plan(session: Session, principal: Principal | None, ref: str, body: Any,
               if_match: str | None, render: Render, claims: BatchClaims | None = None) -> Plan:
    dataset, planned = plan_patch(session, principal, ref, body, if_match, claims)
    if isinstance(planned, DatasetVersion):
        unchanged = render(Recorded(dataset, planned, created=False))
        return Plan([], lambda _session, _versions: unchanged)
    return Plan([planned], lambda _session, versions: render(
        Recorded(dataset, versions[0], created=True)))


def withdraw_plan(session: Session, principal: Principal | None, ref: str, note: str | None,
                  if_match: str | None, render: Render,
                  claims: BatchClaims | None = None) -> Plan:
    change = plan_withdraw(session, principal, ref, note, if_match, claims)
    return Plan([change], lambda _session, versions: render(
        Recorded(change.dataset, versions[0], created=True)))
