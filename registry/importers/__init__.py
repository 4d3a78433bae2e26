"""Bulk import: map other catalogues' metadata onto our dataset schema, one record at a time.

Every reader yields `ImportRecord` (valid metadata, ready to publish) or `RejectedRecord` (why
not), so one bad entry in a catalogue of thousands never stops an import. See docs/import.md.

Modules, in dependency order (no cycles): `outcomes` (the two record types), `values` and
`file_types` (cleaning rules read from the schema), `validation` (the schema check, shared with
the API), `sources` (file text), the format mappers `jsonl`, `datajson`, `ckan`, `reading` (the
dispatcher), `publishers` (sub-organisation ids) and `pipeline` (the two-process import).
"""

from registry.importers.outcomes import ImportRecord, RejectedRecord
from registry.importers.reading import read_records

__all__ = ["ImportRecord", "RejectedRecord", "read_records"]
