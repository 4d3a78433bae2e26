"""Autocomplete entries: what a document offers to the search box as the user types.

Each entry is one indexed key ``<typed form>\\x1f<kind>\\x1f<text to show>``; an engine finds the
entries whose key starts with what the user typed (a prefix walk of a term dictionary), counts
the visible documents behind each, and shows the most common. Typed forms:

* the text itself, case-folded (交通运输数据…, "death register");
* the text from each later word on (运输数据… for 北京市交通运输数据; "register" for
  "Death register"), so typing a word in the middle finds the title;
* the pinyin initials of keywords, departments and topics (jtys → 交通运输), via ``pypinyin``;
  not of titles, which are unique and many (cost), while topics repeat and are cached.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from search.analysis import _CLASSIFIED_RE, chinese_words

SEPARATOR = "\x1f"
KINDS = {"t": "title", "k": "keyword", "d": "department", "c": "topic"}
MAX_SUFFIXES = 8  # word starts per text
MAX_TEXT = 120  # longer texts are not suggestions
MIN_PREFIX = 1
MAX_PREFIX = 100

_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Suggestion:
    text: str
    kind: str  # title, keyword, department, topic
    count: int


def normalise(text: str) -> str:
    return _SPACES.sub(" ", text.casefold()).strip()


@lru_cache(maxsize=65536)
def pinyin_initials(text: str) -> str:
    """First letters of the pinyin of each Chinese character (交通运输 → jtys); '' without
    Chinese."""
    from pypinyin import Style, lazy_pinyin

    letters = lazy_pinyin(text, style=Style.FIRST_LETTER, errors="ignore")
    return "".join(letter for letter in letters if letter.isascii() and letter.isalpha())


def _word_starts(text: str) -> list[int]:
    """Character offsets where a word begins (jieba words in Chinese runs, latin words)."""
    folded = text.casefold()
    starts: list[int] = []
    position = 0
    for match in _CLASSIFIED_RE.finditer(folded):
        cjk, latin = match.group(1), match.group(2)
        position = match.start()
        if latin:
            starts.append(position)
            continue
        offset = position
        for word in chinese_words(cjk):
            if folded.startswith(word, offset):
                starts.append(offset)
                offset += len(word)
    return starts


@lru_cache(maxsize=65536)
def _entries_of(text: str, kind: str, with_pinyin: bool) -> tuple[str, ...]:
    shown = _SPACES.sub(" ", text).strip()
    if not shown or len(shown) > MAX_TEXT:
        return ()
    tail = f"{SEPARATOR}{kind}{SEPARATOR}{shown}"
    folded = normalise(shown)
    keys = [folded]
    for start in _word_starts(shown)[1:MAX_SUFFIXES]:
        keys.append(normalise(shown[start:]))
    if with_pinyin:
        initials = pinyin_initials(shown)
        if len(initials) >= 2:
            keys.append(initials)
    return tuple(dict.fromkeys(k + tail for k in keys if k))


def entries(doc: Mapping[str, object]) -> list[str]:
    """Every suggestion key of a document."""
    out: list[str] = []
    for source, kind, pinyin in (("title_zh", "t", False), ("title_en", "t", False),
                                 ("keywords", "k", True), ("publisher_names", "d", True),
                                 ("themes", "c", True)):
        value = doc.get(source)
        values = value if isinstance(value, list) else [value]
        for text in values:
            if isinstance(text, str):
                out.extend(_entries_of(text, kind, pinyin))
    return list(dict.fromkeys(out))


def parse_entry(key: str) -> tuple[str, str] | None:
    """(text to show, kind) of an indexed key."""
    parts = key.split(SEPARATOR)
    if len(parts) != 3 or parts[1] not in KINDS:
        return None
    return parts[2], KINDS[parts[1]]
