"""Bulk import: many records in one transaction per batch, one log append per batch.

An import is the same write as a POST (same versions, same log leaves, same index rows), only
batched: per batch, one query finds the existing datasets, one log append covers every leaf, one
index call covers every document. Re-importing an unchanged file records nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from registry.auth.principal import Principal, require_role
from registry.database import serialize_catalogue_writes
from registry.datasets.actions import (
    Services,
    VersionChange,
    record_versions,
    slug_base,
    unique_slugs,
)
from registry.datasets.canonical import sha256_hex
from registry.datasets.models import Change, Dataset, DatasetVersion, State, Visibility
from registry.datasets.validation import canonical_or_field_errors
from registry.importers.outcomes import ImportRecord
from registry.importers.publishers import hashed_id, organization_names, suborganization_id
from registry.organizations.models import Organization, Role
from registry.problems import Problem, not_found
from registry.timefmt import utc_now


@dataclass
class ImportSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str | None, list[str]]] = field(default_factory=list)

    def add(self, other: ImportSummary) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.rejected.extend(other.rejected)


class SubOrganizations:
    """Creates (once) the sub-organisations that nested publishers name, under the root org."""

    def __init__(self, root: Organization) -> None:
        self.root = root
        self._known: dict[tuple[str, ...], Organization] = {}
        self._by_id: dict[str, Organization] | None = None

    def for_path(self, session: Session, path: Sequence[str]) -> Organization:
        names = tuple(path[1:]) if path and _same_name(path[0], self.root) else tuple(path)
        parent = self.root
        for depth in range(len(names)):
            key = names[: depth + 1]
            if key not in self._known:
                self._known[key] = self._ensure(session, parent, names[depth])
            parent = self._known[key]
        return parent

    def _ensure(self, session: Session, parent: Organization, name: str) -> Organization:
        if self._by_id is None:  # one query per batch instead of one per publisher path
            self._by_id = {o.id: o for o in session.scalars(select(Organization))}
        org_id = suborganization_id(parent.id, name)
        org = self._by_id.get(org_id)
        if org is not None and not _same_name(name, org):  # a cut id names another publisher
            org_id = hashed_id(parent.id, name)
            org = self._by_id.get(org_id)
        if org is None:
            org = Organization(id=org_id, **organization_names(name), kind="agency",
                               parent_id=parent.id, created_at=utc_now())
            session.add(org)
            session.flush()
            self._by_id[org_id] = org
        return org


def _same_name(name: str, org: Organization) -> bool:
    return name.strip().casefold() in {(org.name_en or "").casefold(),
                                       (org.name_zh or "").casefold()}


def import_batch(session: Session, services: Services, principal: Principal | None,
                 organization_id: str, records: Sequence[ImportRecord], *,
                 suborgs: SubOrganizations | None = None,
                 analysed: Sequence[dict[str, str]] | None = None) -> ImportSummary:
    """Publish or update each record of one batch; unchanged records record nothing."""
    require_role(principal, organization_id, Role.EDITOR)
    serialize_catalogue_writes(session)
    root = session.get(Organization, organization_id)
    if root is None:
        raise not_found(f"no organisation {organization_id!r}")
    summary = ImportSummary()
    targets = [suborgs.for_path(session, r.publisher_path) if suborgs else root
               for r in records]
    existing = _existing_released(session, targets, records)
    now = utc_now()
    who = principal.id if principal else ""
    changes: list[VersionChange] = []
    new_slugs: list[tuple[str, str]] = []
    fresh: list[tuple[VersionChange, str | None]] = []
    seen: set[tuple[str, str]] = set()
    pre = list(analysed) if analysed is not None else [None] * len(records)
    for record, org, tokens in zip(records, targets, pre, strict=True):
        if (org.id, record.external_id) in seen:
            summary.rejected.append((record.position or -1, record.external_id,
                                     ["duplicate external_id in batch"]))
            continue
        seen.add((org.id, record.external_id))
        try:
            canonical = canonical_or_field_errors(record.metadata)
        except Problem as problem:
            summary.rejected.append((record.position or -1, record.external_id,
                                     [f"{e.pointer}: {e.detail}" for e in problem.errors]))
            continue
        found = existing.get((org.id, record.external_id))
        visibility = Visibility(record.visibility)
        if found is not None:
            dataset, released_sha, released_visibility = found
            if (dataset.released_state == State.PUBLISHED and released_sha == sha256_hex(canonical)
                    and released_visibility == visibility.value):
                summary.unchanged += 1
                continue
            kind = Change.UPDATED if dataset.released_state == State.PUBLISHED else Change.PUBLISHED
            changes.append(VersionChange(
                dataset=dataset, organization=org, version=dataset.current_version + 1,
                change=kind, state=State.PUBLISHED, visibility=visibility, slug=dataset.slug,
                metadata=record.metadata, created_by=who, now=now, canonical=canonical,
                analysed=tokens))
            summary.updated += 1
            continue
        dataset = Dataset(id=str(uuid.uuid4()), slug="", organization_id=org.id,
                          external_id=record.external_id, state=State.PUBLISHED,
                          visibility=visibility.value, current_version=1, title="",
                          created_at=now, modified_at=now)
        change = VersionChange(
            dataset=dataset, organization=org, version=1, change=Change.PUBLISHED,
            new_dataset=True,
            state=State.PUBLISHED, visibility=visibility, slug="", metadata=record.metadata,
            created_by=who, now=now, canonical=canonical, analysed=tokens)
        fresh.append((change, record.slug_hint))
        new_slugs.append((record.slug_hint or slug_base(record.metadata, record.external_id),
                          dataset.id))
        summary.created += 1
    for (change, _), slug in zip(fresh, unique_slugs(session, new_slugs), strict=True):
        change.slug = change.dataset.slug = slug
        changes.append(change)
    if changes:
        record_versions(session, services, changes, receipts=False)
    return summary


def _existing_released(session: Session, orgs: Sequence[Organization],
                       records: Sequence[ImportRecord],
                       ) -> dict[tuple[str, str], tuple[Dataset, str | None, str | None]]:
    """Existing datasets of this batch with the hash and visibility of what the public sees."""
    keys = {(o.id, r.external_id) for o, r in zip(orgs, records, strict=True)}
    org_ids = {k[0] for k in keys}
    external_ids = {k[1] for k in keys}
    rows = session.execute(
        select(Dataset, DatasetVersion.metadata_sha256, DatasetVersion.visibility)
        .outerjoin(DatasetVersion, and_(DatasetVersion.dataset_id == Dataset.id,
                                        DatasetVersion.version == Dataset.released_version))
        .where(Dataset.organization_id.in_(org_ids), Dataset.external_id.in_(external_ids)))
    out = {}
    for dataset, sha, visibility in rows:
        key = (dataset.organization_id, dataset.external_id or "")
        if key in keys:
            out[key] = (dataset, sha, visibility)
    return out
