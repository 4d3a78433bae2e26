"""Scheduled harvest of sources without a log: CKAN Action APIs, DCAT-AP catalogues (Turtle or
JSON-LD) and data.json files.

Nothing vouches for these records but the source's web server, so they are labelled
**"harvested, provenance not verified"** everywhere (the organisation that holds them says so,
and so does the source list), unlike federated entries, which carry proofs. They go into the
hub's own log at harvest time, like any publish: from then on the hub answers for what it
harvested and when.

Change detection reuses the bulk importer: an unchanged record writes nothing, a changed one
is a new version, a record gone from the source is withdrawn. Each run keeps a report
(created / updated / withdrawn / rejected with reasons). A failing source is retried with
exponential backoff and never blocks the others.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.auth.principal import Principal
from registry.datasets.actions import dataset_withdraw
from registry.datasets.bulk import import_batch
from registry.datasets.models import Dataset, State
from registry.federation.models import HarvestSource
from registry.federation.poller import FetchError, fetch
from registry.importers import ckan, datajson
from registry.importers.outcomes import ImportRecord, RejectedRecord
from registry.organizations.models import Organization, Role
from registry.state import RegistryState
from registry.timefmt import utc_now

log = logging.getLogger(__name__)
LABEL = "harvested, provenance not verified"
LABEL_ZH = "采集所得，来源未经验证"
KINDS = ("ckan", "dcat", "datajson")
MAX_SOURCE_BYTES = 64 << 20
_CKAN_PAGE = 100
_MAX_BACKOFF = 86400.0


@dataclass
class HarvestReport:
    source: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    withdrawn: int = 0
    rejected: list[tuple[int, str | None, list[str]]] = field(default_factory=list)
    error: str | None = None

    def line(self) -> str:
        if self.error:
            return f"{self.source}: FAILED {self.error}"
        return (f"{self.source}: created {self.created}, updated {self.updated}, unchanged "
                f"{self.unchanged}, withdrawn {self.withdrawn}, rejected {len(self.rejected)}")


# -- reading the sources ------------------------------------------------------------------------


def _json(url: str, timeout: float) -> Any:
    try:
        return json.loads(fetch(url, timeout, MAX_SOURCE_BYTES))
    except ValueError as exc:
        raise FetchError(f"{url} is not JSON: {exc}") from None


def read_ckan(url: str, timeout: float = 30.0) -> Iterator[Any]:
    """Every package of a CKAN Action API, through package_search pages."""
    base = url.rstrip("/")
    if not base.endswith("/action"):
        base += "/api/3/action"
    start, total = 0, None
    while total is None or start < total:
        page = _json(f"{base}/package_search?rows={_CKAN_PAGE}&start={start}", timeout)
        try:
            total = int(page["result"]["count"])
        except (KeyError, TypeError, ValueError):
            raise FetchError(f"{base}/package_search is not a CKAN answer") from None
        packages = ckan.packages_of(page, base)
        yield from packages
        if not packages:
            break
        start += len(packages)


def _dcat_entries(text: str, url: str) -> list[dict[str, Any]]:
    """DCAT-AP (Turtle or JSON-LD) -> data.json-shaped entries the data.json mapper reads."""
    from rdflib import Graph
    from rdflib.namespace import DCAT, DCTERMS, RDF

    graph = Graph()
    fmt = "json-ld" if text.lstrip().startswith(("{", "[")) else "turtle"
    try:
        graph.parse(data=text, format=fmt, publicID=url)
    except Exception as exc:  # rdflib raises many types for a bad document
        raise FetchError(f"{url} is not DCAT-AP {fmt}: {exc}") from None

    def literals(subject: Any, predicate: Any) -> list[str]:
        return [str(o) for o in graph.objects(subject, predicate)]

    entries = []
    for dataset in graph.subjects(RDF.type, DCAT.Dataset):
        distributions = []
        for dist in graph.objects(dataset, DCAT.distribution):
            access = literals(dist, DCAT.accessURL) or literals(dist, DCAT.downloadURL)
            distributions.append({"accessURL": access[0] if access else None,
                                  "format": (literals(dist, DCTERMS.format) or [None])[0],
                                  "mediaType": (literals(dist, DCAT.mediaType) or [None])[0],
                                  "title": (literals(dist, DCTERMS.title) or [None])[0]})
        identifier = (literals(dataset, DCTERMS.identifier) or [str(dataset)])[0]
        entries.append({"identifier": identifier,
                        "title": (literals(dataset, DCTERMS.title) or [None])[0],
                        "description": (literals(dataset, DCTERMS.description) or [None])[0],
                        "keyword": literals(dataset, DCAT.keyword),
                        "modified": (literals(dataset, DCTERMS.modified) or [None])[0],
                        "issued": (literals(dataset, DCTERMS.issued) or [None])[0],
                        "accessLevel": "public", "distribution": distributions})
    return entries


def read_source(kind: str, url: str, timeout: float = 30.0) -> list[ImportRecord | RejectedRecord]:
    if kind == "ckan":
        return [ckan.map_package(i, p) for i, p in enumerate(read_ckan(url, timeout), start=1)]
    if kind == "datajson":
        document = _json(url, timeout)
        entries = document.get("dataset") if isinstance(document, dict) else document
        if not isinstance(entries, list):
            raise FetchError(f"{url} is not a data.json catalogue (no 'dataset' list)")
    elif kind == "dcat":
        entries = _dcat_entries(fetch(url, timeout, MAX_SOURCE_BYTES).decode("utf-8",
                                                                             "replace"), url)
    else:
        raise ValueError(f"unknown source kind {kind!r}")
    return [datajson.map_dataset(i, e) for i, e in enumerate(entries, start=1)]


# -- the configuration --------------------------------------------------------------------------


def source_organization_id(url: str) -> str:
    return "harvest-" + hashlib.sha256(url.encode()).hexdigest()[:16]


def add_source(session: Session, kind: str, url: str, interval: float = 3600.0
               ) -> HarvestSource:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError("a source URL must be http or https")
    org_id = source_organization_id(url)
    if session.get(Organization, org_id) is None:
        host = urllib.parse.urlsplit(url).netloc
        session.add(Organization(id=org_id, name_zh=f"{host}（{LABEL_ZH}）",
                                 name_en=f"{host} ({LABEL})", kind="other",
                                 description=f"{LABEL}: records copied from {url}",
                                 homepage=url[:500]))
        session.flush()
    source = HarvestSource(kind=kind, url=url, organization_id=org_id, interval=interval,
                           failures=0, next_run_at=utc_now())
    session.add(source)
    session.flush()
    return source


def source_json(source: HarvestSource) -> dict[str, Any]:
    return {"id": source.id, "kind": source.kind, "url": source.url, "label": LABEL,
            "label_zh": LABEL_ZH, "organization": source.organization_id,
            "interval": source.interval, "failures": source.failures,
            "last_run_at": source.last_run_at.isoformat() + "Z" if source.last_run_at else None,
            "next_run_at": source.next_run_at.isoformat() + "Z" if source.next_run_at else None,
            "last_report": json.loads(source.last_report) if source.last_report else None,
            "last_error": source.last_error}


# -- running ------------------------------------------------------------------------------------


def _principal(source_id: int) -> Principal:
    return Principal(id=f"harvest:{source_id}", organization_id=None, role=Role.OPERATOR)


def harvest_source(state: RegistryState, source_id: int, *, batch_size: int = 500,
                   progress: Callable[[str], None] | None = None) -> HarvestReport:
    with state.db.read() as session:
        source = session.get(HarvestSource, source_id)
        if source is None:
            raise ValueError(f"no harvest source {source_id}")
        kind, url, org_id = source.kind, source.url, source.organization_id
    report = HarvestReport(source=url)
    try:
        outcomes = read_source(kind, url)
    except (FetchError, ValueError) as exc:
        report.error = str(exc)
        _finish(state, source_id, report)
        return report
    records = [o for o in outcomes if isinstance(o, ImportRecord)]
    report.rejected = [(o.position, o.external_id, o.reasons) for o in outcomes
                       if isinstance(o, RejectedRecord)]
    principal = _principal(source_id)
    for start in range(0, len(records), batch_size):
        with state.db.write() as session:
            summary = import_batch(session, state.services, principal, org_id,
                                   records[start:start + batch_size])
        report.created += summary.created
        report.updated += summary.updated
        report.unchanged += summary.unchanged
        report.rejected += summary.rejected
        if progress:
            progress(f"{url}: {min(start + batch_size, len(records))}/{len(records)}")
    seen = {r.external_id for r in records} | {e for _, e, _ in report.rejected if e}
    with state.db.write() as session:
        gone = session.scalars(select(Dataset).where(
            Dataset.organization_id == org_id, Dataset.released_state == State.PUBLISHED)).all()
        for dataset in gone:
            if dataset.external_id not in seen:
                dataset_withdraw(session, state.services, principal, dataset.id,
                                 note=f"gone from {url}")
                report.withdrawn += 1
    _finish(state, source_id, report)
    return report


def _finish(state: RegistryState, source_id: int, report: HarvestReport) -> None:
    with state.db.write() as session:
        source = session.get(HarvestSource, source_id)
        if source is None:
            return
        now = utc_now()
        source.last_run_at = now
        if report.error:
            source.failures += 1
            source.last_error = report.error[:2000]
            delay = min(_MAX_BACKOFF, source.interval * 2 ** min(source.failures - 1, 16) / 8)
            source.next_run_at = now + timedelta(seconds=max(delay, 1.0))
        else:
            source.failures = 0
            source.last_error = None
            source.next_run_at = now + timedelta(seconds=source.interval)
            data = asdict(report)
            data["rejected"] = data["rejected"][:200]
            source.last_report = json.dumps(data, ensure_ascii=False)


def run_due(state: RegistryState) -> list[HarvestReport]:
    """Every source whose time has come, one after another; one failing never stops the rest."""
    with state.db.read() as session:
        due = list(session.scalars(select(HarvestSource.id).where(
            HarvestSource.next_run_at <= utc_now()).order_by(HarvestSource.id)))
    reports = []
    for source_id in due:
        if not _claim(state, source_id):
            continue  # another process took it
        try:
            reports.append(harvest_source(state, source_id))
        except Exception as exc:  # a bug or a database error on one source: log, go on
            log.exception("harvest of source %s failed", source_id)
            reports.append(HarvestReport(source=str(source_id), error=str(exc)))
    return reports


def _claim(state: RegistryState, source_id: int) -> bool:
    """Move the source's next run ahead, so concurrent hub processes harvest it once."""
    with state.db.write() as session:
        source = session.scalar(select(HarvestSource).where(
            HarvestSource.id == source_id).with_for_update())
        now = utc_now()
        if source is None or source.next_run_at > now:
            return False
        source.next_run_at = now + timedelta(seconds=source.interval)
        return True


class HarvestLoop:
    def __init__(self, state: RegistryState, tick: float = 5.0) -> None:
        self.state, self._tick = state, tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                run_due(self.state)
                self.last_error = None
            except Exception as exc:
                self.last_error = str(exc)
                log.exception("harvest loop failed")
            self._stop.wait(self._tick)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ndr-harvest", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
