"""Reading a source file's text, and repairing text that is not Unicode at all.

Foreign catalogues are UTF-8, some with a byte-order mark that json.loads rejects, and some
escape broken text as lone UTF-16 surrogates ("\\udc92").
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from registry.importers.outcomes import ImportRecord

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def read_text(path: Path) -> str:
    return Path(path).read_text(encoding="utf-8-sig")


def replace_lone_surrogates(value: Any) -> Any:
    """Lone surrogates are not Unicode and cannot be canonicalised; U+FFFD marks where the
    damage was. U+0000, which PostgreSQL text cannot hold, is removed."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value).replace("\x00", "")
    if isinstance(value, dict):
        return {replace_lone_surrogates(k): replace_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [replace_lone_surrogates(v) for v in value]
    return value


def with_surrogates_replaced(record: ImportRecord) -> ImportRecord:
    """The record itself when its text is clean (the common case: one encode, no copy)."""
    serialized = json.dumps(record.metadata, ensure_ascii=False)
    try:
        serialized.encode("utf-8")  # fails on lone surrogates
        if "\\u0000" not in serialized:  # json escapes U+0000
            return record
    except UnicodeEncodeError:
        pass
    return replace(record, metadata=replace_lone_surrogates(record.metadata))
