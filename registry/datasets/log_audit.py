"""Catalogue checks of the self-audit: every version row agrees with the log entry it was
recorded under, and every dataset row with its versions.

Plugged into `anchoring.self_audit.SelfAudit` (anchoring never imports the registry). Per
version:

* ``metadata_json`` hashes to ``metadata_sha256``;
* a logged version (published, updated, withdrawn) has an entry, it parses (the auditor's
  format module), and its type, dataset, version, organisation and visibility are the row's;
  it commits to ``metadata_json`` (v1) or to ``metadata_salt || metadata_json`` (v2);
* its receipt, if any, is a note the log key signed for that index and leaf hash;
* an unlogged version (draft, discarded) has no leaf, no salt and no receipt;
* the dataset row's slug, state, visibility and title are its current version's, and its
  released state is its released version's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from anchoring.auditor import entry as entry_format
from anchoring.checkpoint import CheckpointError
from anchoring.log_store import LogError, TransparencyLog
from anchoring.note import NoteVerifier
from anchoring.self_audit import CatalogueAuditor, Finding
from registry.datasets.models import Change, Dataset, DatasetVersion

LOGGED = {Change.PUBLISHED.value, Change.UPDATED.value, Change.WITHDRAWN.value}


def _key(version: DatasetVersion) -> str:
    return f"{version.dataset_id}/{version.version}"


def _after(key: str) -> Any:
    if not key:
        return True
    dataset_id, _, number = key.rpartition("/")
    return or_(DatasetVersion.dataset_id > dataset_id,
               and_(DatasetVersion.dataset_id == dataset_id,
                    DatasetVersion.version > int(number)))


def check_version(log: TransparencyLog, dataset: Dataset, version: DatasetVersion,
                  verifiers: Sequence[NoteVerifier] | None = None) -> list[Finding]:
    findings: list[Finding] = []
    index = version.leaf_index
    where = f"dataset {dataset.id} version {version.version}"

    def found(kind: str, detail: str) -> None:
        findings.append(Finding(kind, f"{where}: {detail}", index))

    metadata = version.metadata_json.encode("utf-8")
    if hashlib.sha256(metadata).hexdigest() != version.metadata_sha256:
        found("catalogue mismatch", "metadata_json does not hash to metadata_sha256")
    if version.change not in LOGGED:
        if index is not None or version.metadata_salt is not None or version.receipt:
            found("catalogue mismatch", f"a {version.change} version is never logged, yet it "
                  "has a leaf index, salt or receipt")
        return findings
    if index is None or version.log_entry is None:
        found("catalogue mismatch", "a logged version has no log entry")
        return findings
    try:
        entry = entry_format.parse_entry(bytes(version.log_entry))
    except entry_format.EntryError as exc:
        found("malformed entry", str(exc))
        return findings
    expected = {"type": version.change, "dataset": dataset.id, "version": version.version,
                "organization": dataset.organization_id, "visibility": version.visibility}
    for name, value in expected.items():
        if entry.get(name, value if name == "visibility" else None) != value:
            found("catalogue mismatch", f"the entry's {name} is {entry.get(name)!r}, the "
                  f"catalogue says {value!r}")
    try:
        salt = bytes.fromhex(version.metadata_salt) if version.metadata_salt else None
        entry_format.check_metadata(entry, metadata, salt)
    except (ValueError, entry_format.EntryError) as exc:
        found("catalogue mismatch", f"metadata commitment: {exc}")
    if version.receipt:
        try:
            receipt = log.open_receipt_any(version.receipt,
                                           verifiers or [log.signer.verifier])
            if receipt.index != index or receipt.leaf_hash != entry.leaf_hash \
                    or receipt.origin != log.origin:
                raise CheckpointError("it promises another index, leaf or log")
        except (CheckpointError, ValueError) as exc:
            found("catalogue mismatch", f"receipt: {exc}")
    return findings


def check_dataset_row(dataset: Dataset, version: DatasetVersion) -> list[Finding]:
    """The dataset row against one of its versions (its current or its released one)."""
    out = []
    wanted: dict[str, Any] = {}
    if version.version == dataset.current_version:
        metadata = json.loads(version.metadata_json)
        title = metadata.get("title", {}) if isinstance(metadata, dict) else {}
        wanted.update(slug=version.slug, state=version.state, visibility=version.visibility,
                      title=(title.get("zh") or title.get("en") or version.slug)[:500])
    if version.version == dataset.released_version:
        wanted["released_state"] = version.state
    for name, value in wanted.items():
        if getattr(dataset, name) != value:
            out.append(Finding("catalogue mismatch", f"dataset {dataset.id}: {name} is "
                               f"{getattr(dataset, name)!r}, its version {version.version} "
                               f"says {value!r}", version.leaf_index))
    return out


def check_version_pointers(session: Session, dataset_ids: set[str]) -> list[Finding]:
    """current_version is the newest version; released_version the newest logged one.

    The dataset row and its versions are read in one statement, so a write committing in
    between (PostgreSQL reads per statement) cannot look like a mismatch."""
    if not dataset_ids:
        return []
    # A federated version (mirrored from a member, covered by a member.checkpoint leaf of this
    # log) is released without a leaf of its own.
    logged = case((DatasetVersion.leaf_index.is_not(None)
                   | DatasetVersion.change.startswith("federated."), DatasetVersion.version))
    rows = session.execute(
        select(Dataset.id, Dataset.current_version, Dataset.released_version,
               func.max(DatasetVersion.version), func.max(logged))
        .join(DatasetVersion, DatasetVersion.dataset_id == Dataset.id)
        .where(Dataset.id.in_(sorted(dataset_ids)))
        .group_by(Dataset.id, Dataset.current_version, Dataset.released_version))
    out = []
    for dataset_id, current, released, newest, newest_logged in rows:
        for name, have, want in (("current_version", current, newest),
                                 ("released_version", released, newest_logged)):
            if have != want:
                out.append(Finding("catalogue mismatch", f"dataset {dataset_id}: {name} is "
                                   f"{have}, its versions say {want}"))
    return out


def catalogue_auditor(log: TransparencyLog) -> CatalogueAuditor:
    """The self-audit's catalogue pass: `limit` versions after `after`, in key order."""

    def audit(session: Session, after: str, limit: int) -> tuple[list[Finding], str]:
        rows = session.execute(
            select(Dataset, DatasetVersion).join(Dataset, Dataset.id == DatasetVersion.dataset_id)
            .where(_after(after)).order_by(DatasetVersion.dataset_id, DatasetVersion.version)
            .limit(limit).execution_options(populate_existing=True)).all()
        findings: list[Finding] = []
        try:
            verifiers = log.key_chain(session)  # receipts signed before a key rotation
        except LogError as exc:
            findings.append(Finding("key rotation mismatch", str(exc), None))
            verifiers = [log.signer.verifier]
        for dataset, version in rows:
            findings += check_version(log, dataset, version, verifiers)
            findings += check_dataset_row(dataset, version)
        findings += check_version_pointers(session, {d.id for d, _ in rows})
        next_key = _key(rows[-1][1]) if len(rows) == limit else ""
        return findings, next_key

    return audit
