"""Bulk import: map other catalogues' metadata onto our dataset schema, one record at a time.

Every reader yields `ImportRecord` (valid metadata, ready to publish) or `RejectedRecord` (why
not), so one bad entry in a catalogue of thousands never stops an import. See docs/import.md.
"""

from registry.importers.records import ImportRecord, RejectedRecord, read_records

__all__ = ["ImportRecord", "RejectedRecord", "read_records"]
