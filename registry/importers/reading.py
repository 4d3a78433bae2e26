"""`read_records`: a catalogue file of a given format → one outcome per source entry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from registry.importers import ckan, datajson, jsonl
from registry.importers.outcomes import FORMATS, Format, ImportRecord, Outcome
from registry.importers.sources import with_surrogates_replaced

_READERS = {"jsonl": jsonl.read, "datajson": datajson.read, "ckan": ckan.read}
assert set(_READERS) == set(FORMATS)


def read_records(path: Path, fmt: Format) -> Iterator[Outcome]:
    """Read a catalogue file of the given format; one outcome per source entry, in file order."""
    try:
        reader = _READERS[fmt]
    except KeyError:
        raise ValueError(
            f"unknown import format {fmt!r}; expected one of {sorted(_READERS)}"
        ) from None
    outcomes = reader(Path(path))
    if fmt == "jsonl":  # our own format: lone surrogates are errors, reported at publish time
        return outcomes
    return (with_surrogates_replaced(o) if isinstance(o, ImportRecord) else o for o in outcomes)
