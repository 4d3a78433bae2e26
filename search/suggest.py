"""Autocomplete entries: what a document offers to the search box as the user types.

Keywords, departments and topics repeat across a catalogue, so they are indexed as keys
``<typed form>␟<kind>␟<text to show>`` (␟ = U+001F); an engine finds the keys that start with
what the user typed (a prefix walk of a small term dictionary), counts the visible documents
behind each, and shows the most common. Typed forms:

* the text itself, case-folded (交通运输, "public health");
* the text from each later word on (运输 for 交通运输; "health" for "public health");
* the pinyin initials (jtys → 交通运输), via ``pypinyin``.

Titles are unique: as keys they made the term dictionary as large as the catalogue and tripled
indexing time, so title suggestions come from an ordinary search on the query plan instead
(whole words, fragments, and the word being typed as a prefix).
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
    for source, kind, pinyin in (("keywords", "k", True), ("publisher_names", "d", True),
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


_LATIN_WORD = re.compile(r"[a-z][a-z'-]{3,}")


def spelling_words(doc: Mapping[str, object]) -> list[str]:
    """The English words (4+ letters, case-folded) of the titles and keywords: the vocabulary
    a spelling suggestion is taken from."""
    words: dict[str, None] = {}
    for source in ("title_en", "keywords", "title_zh"):
        value = doc.get(source)
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                words.update(dict.fromkeys(_LATIN_WORD.findall(text.casefold())))
    return list(words)
