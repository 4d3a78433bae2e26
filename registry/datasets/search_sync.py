"""Keeping the search index equal to the catalogue: rebuild it, find drift, repair it.

CKAN's Solr index drifts from its database (GSA/data.gov#840) because nothing compares them.
Here every engine is fed from the catalogue's own transactions (the change feed, or the
in-database index written in the same transaction), and for every engine `ndr search check`
compares what the index holds (dataset → version) with what the catalogue says, and
`--repair` re-indexes exactly the differences (through the feed, for a fed engine).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from registry.datasets.actions import DISCARDED, version_metadata
from registry.datasets.models import Dataset, DatasetVersion
from registry.datasets.search_documents import search_document
from registry.organizations.models import Organization
from search.elasticsearch_backend import DriftReport

BATCH = 1000


def indexable_versions(session: Session) -> dict[str, int]:
    """dataset id → the version the index should hold (what citizens or the org see)."""
    rows = session.execute(
        select(Dataset.id, func.coalesce(Dataset.released_version, Dataset.current_version),
               DatasetVersion.change)
        .join(DatasetVersion, and_(
            DatasetVersion.dataset_id == Dataset.id,
            DatasetVersion.version == func.coalesce(Dataset.released_version,
                                                    Dataset.current_version))))
    return {dataset_id: int(version) for dataset_id, version, change in rows
            if change != DISCARDED}


def documents(session: Session, dataset_ids: list[str] | None = None
              ) -> Iterator[dict[str, Any]]:
    """Search documents for the given datasets (all, when None), in batches."""
    wanted = indexable_versions(session)
    ids = sorted(wanted) if dataset_ids is None else [i for i in dataset_ids if i in wanted]
    ancestry: dict[str, list[Organization]] = {}
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        datasets = {d.id: d for d in session.scalars(select(Dataset).where(
            Dataset.id.in_(chunk)))}
        versions = {v.dataset_id: v for v in session.scalars(select(DatasetVersion).where(
            DatasetVersion.dataset_id.in_(chunk)))
            if v.version == wanted[v.dataset_id]}
        for dataset_id in chunk:
            dataset, version = datasets[dataset_id], versions[dataset_id]
            if dataset.organization_id not in ancestry:
                org = session.get(Organization, dataset.organization_id)
                assert org is not None
                ancestry[dataset.organization_id] = org.ancestry()
            chain = ancestry[dataset.organization_id]
            yield search_document(dataset, version=version.version, state=version.state,
                                  visibility=version.visibility,
                                  metadata=version_metadata(version), organization=chain[-1],
                                  modified=version.created_at, ancestry=chain)


def drift(session: Session, backend: Any) -> DriftReport:
    """Differences between the index (Tantivy or in-database) and the catalogue."""
    indexed: dict[str, int] = backend.indexed_versions(session)
    wanted = indexable_versions(session)
    return DriftReport(missing=sorted(set(wanted) - set(indexed)),
                 stale=sorted(i for i in wanted if i in indexed and indexed[i] != wanted[i]),
                 extra=sorted(set(indexed) - set(wanted)))


def repair(session: Session, backend: Any, report: DriftReport) -> int:
    """Re-index the missing and stale entries and remove the extra ones, in the caller's write
    transaction (a fed engine applies them from the feed right after the commit)."""
    todo = report.missing + report.stale
    batch: list[dict[str, Any]] = []
    for doc in documents(session, todo):
        batch.append(doc)
        if len(batch) >= BATCH:
            backend.index(session, batch)
            batch = []
    if batch:
        backend.index(session, batch)
    if report.extra:
        backend.remove(session, report.extra)
    return len(todo) + len(report.extra)


def reindex(session: Session | None, backend: Any) -> int:
    """Re-index every dataset (e.g. after an analysis change). Tantivy rebuilds under its feed
    lease in one commit; the in-database index in the caller's transaction. Readers keep the
    old index until then."""
    if hasattr(backend, "rebuild"):
        return int(backend.rebuild(documents))
    count = 0
    batch: list[dict[str, Any]] = []
    for doc in documents(session):
        batch.append(doc)
        count += 1
        if len(batch) >= BATCH:
            backend.index(session, batch)
            batch = []
    if batch:
        backend.index(session, batch)
    extra = drift(session, backend).extra
    if extra:
        backend.remove(session, extra)
    return count
