"""The import pipeline behind `ndr import`: a reader process maps the file, this process writes.

Reading and mapping (JSON parsing, cleaning, validation, index text) run in a second process
that streams batches to this one, which only writes, each batch in one transaction: the two
halves overlap on two cores, and the writer never holds the whole parsed file.

Every rejected record is kept in the summary (no cut at 50) and, with `rejects`, written as
JSON Lines with its reasons and the source entry, so the file can be corrected and imported
again (docs/import.md, "Rejected records").
"""

from __future__ import annotations

import json
import multiprocessing
import queue
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from registry.auth.principal import Principal
from registry.datasets.bulk import ImportSummary, SubOrganizations, import_batch
from registry.importers.outcomes import Format, ImportRecord, RejectedRecord
from registry.organizations.models import Organization
from registry.state import RegistryState

QUEUE_BATCHES = 4  # batches in flight between the processes: bounds the writer's memory
POLL_SECONDS = 0.5  # how often the writer checks that a silent reader is still alive
Progress = Callable[[int, float], None]  # (records seen, records per second)


class ImportFailed(Exception):
    """The file cannot be imported at all (unreadable, or not the format it claims)."""


def run_import(state: RegistryState, path: Path, organization_id: str, fmt: Format, *,
               principal: Principal, suborgs: bool = False, batch_size: int = 500,
               rejects: IO[str] | None = None, progress: Progress | None = None,
               ) -> ImportSummary:
    """Read, map and publish a file batch by batch; each batch is one transaction."""
    summary = ImportSummary()
    root = None
    if suborgs:
        with state.db.read() as session:
            root = session.get(Organization, organization_id)
        if root is None:
            raise ImportFailed(f"no organisation {organization_id!r}")
    context = multiprocessing.get_context("spawn")
    batches = context.Queue(maxsize=QUEUE_BATCHES)
    reader = context.Process(target=read_in_batches, args=(str(path), fmt, batch_size, batches),
                             name="ndr-import-reader", daemon=True)
    reader.start()
    started, seen = time.perf_counter(), 0
    try:
        while (batch := _next_batch(batches, reader, path)) is not None:
            if isinstance(batch, str):
                raise ImportFailed(batch)
            pairs = [o for o in batch if isinstance(o, tuple)]
            refused = [o for o in batch if isinstance(o, RejectedRecord)]
            summary.rejected.extend((o.position, o.external_id, o.reasons) for o in refused)
            with state.db.write() as session:
                sub = SubOrganizations(session.merge(root)) if root is not None else None
                written = import_batch(session, state.services, principal, organization_id,
                                       [p[0] for p in pairs], suborgs=sub,
                                       analysed=[p[1] for p in pairs])
            summary.add(written)
            if rejects is not None:
                write_rejects(rejects, refused)
                write_rejects(rejects, (RejectedRecord(*r) for r in written.rejected))
            seen += len(batch)
            if progress is not None:
                progress(seen, seen / (time.perf_counter() - started))
    finally:
        reader.join(timeout=10)
        if reader.is_alive():
            reader.terminate()
    return summary


def _next_batch(batches: Any, reader: Any, path: Path) -> Any:
    """The next batch; a reader that died without ending the stream (killed, out of memory)
    fails the import instead of leaving this process waiting forever. Batches already written
    stay: each was one whole transaction."""
    while True:
        try:
            return batches.get(timeout=POLL_SECONDS)
        except queue.Empty:
            if reader.is_alive():
                continue
        try:  # what a reader sent just before it ended is still in the pipe
            return batches.get(timeout=POLL_SECONDS)
        except queue.Empty:
            raise ImportFailed(f"the reader of {path} stopped (exit code {reader.exitcode}) "
                               "before the end of the file") from None


def read_in_batches(path: str, fmt: Format, batch_size: int, out: Any) -> None:
    """The reader process: map the file into batches of outcomes (an accepted record travels
    with its index text); None ends the stream, a string reports a file that cannot be read."""
    from registry.datasets.search_documents import pre_analysed
    from registry.importers.reading import read_records

    try:
        batch: list[object] = []
        for outcome in read_records(Path(path), fmt):
            if isinstance(outcome, ImportRecord):
                batch.append((outcome, pre_analysed(outcome.metadata)))
            else:
                batch.append(outcome)
            if len(batch) >= batch_size:
                out.put(batch)
                batch = []
        if batch:
            out.put(batch)
    except (OSError, ValueError) as exc:
        out.put(f"cannot import {path}: {exc}")
    out.put(None)


def rejection_line(rejected: RejectedRecord) -> str:
    """One JSON line: position, external_id, reasons and, when known, the source entry.
    Source text that is not Unicode (lone surrogates) is written \\u-escaped rather than lost."""
    entry: dict[str, Any] = {"position": rejected.position if rejected.position > 0 else None,
                             "external_id": rejected.external_id, "reasons": rejected.reasons}
    if rejected.source is not None:
        entry["source"] = rejected.source
    line = json.dumps(entry, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(entry, ensure_ascii=True)
    return line


def write_rejects(out: IO[str], rejected: Iterable[RejectedRecord]) -> None:
    for record in rejected:
        out.write(rejection_line(record) + "\n")
