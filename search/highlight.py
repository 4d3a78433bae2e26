"""Highlighted snippets, computed in Python from the original text of the hits on one page.

Why not FTS5 ``highlight()`` / ``ts_headline``: the index holds analysed tokens (bigrams,
stems), not the text people read, and the two engines would mark different things. Here the
same query terms are located in the original text, and everything except the ``<mark>`` tags
is HTML-escaped, so a title containing ``<script>`` is shown, never run.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from search.analysis import LATIN_WORD_RE, QueryTerm, is_cjk_token, stem

SNIPPET_CHARS = 160
# Only the start of a long text is searched for matches to show: a snippet is for the reader,
# and scanning whole multi-page descriptions of every hit cost more than the search itself.
SCAN_CHARS = 1200


def _english_word_matches(word: str, term: QueryTerm) -> bool:
    folded = word.casefold()
    token = term.tokens[0]
    if term.prefix:
        return folded.startswith(token) or stem(folded).startswith(token)
    return stem(folded) == token


def match_spans(text: str, terms: Sequence[QueryTerm]) -> list[tuple[int, int]]:
    """Character spans of ``text`` that the query terms matched, merged and sorted."""
    folded = text.casefold()
    spans: list[tuple[int, int]] = []
    english = [t for t in terms if not is_cjk_token(t.tokens[0])]
    for term in terms:
        if is_cjk_token(term.tokens[0]):
            needle = term.surface.casefold()
            start = folded.find(needle)
            while start != -1:
                spans.append((start, start + len(needle)))
                start = folded.find(needle, start + len(needle))
    if english:
        for m in LATIN_WORD_RE.finditer(text):
            if any(_english_word_matches(m.group(), t) for t in english):
                spans.append((m.start(), m.end()))
    return _merge(sorted(spans))


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def highlight(text: str | None, terms: Sequence[QueryTerm]) -> str | None:
    """An escaped snippet (about SNIPPET_CHARS long, centred on the first match) with every
    match wrapped in <mark>…</mark>; None when nothing in ``text`` matched."""
    if not text or not terms:
        return None
    text = text[:SCAN_CHARS]
    spans = match_spans(text, terms)
    if not spans:
        return None
    window_start = 0
    if len(text) > SNIPPET_CHARS:
        window_start = max(0, min(spans[0][0] - SNIPPET_CHARS // 4, len(text) - SNIPPET_CHARS))
    window_end = min(len(text), window_start + SNIPPET_CHARS)
    parts: list[str] = ["…" if window_start > 0 else ""]
    cursor = window_start
    for start, end in spans:
        if end <= window_start or start >= window_end:
            continue
        start, end = max(start, window_start), min(end, window_end)
        parts.append(html.escape(text[cursor:start]))
        parts.append("<mark>" + html.escape(text[start:end]) + "</mark>")
        cursor = end
    parts.append(html.escape(text[cursor:window_end]))
    if window_end < len(text):
        parts.append("…")
    return "".join(parts)


HIGHLIGHT_FIELDS: tuple[str, ...] = ("title_zh", "title_en", "description_zh", "description_en")


def highlights_for(row: dict[str, str | None], terms: Sequence[QueryTerm]) -> dict[str, str]:
    snippets: dict[str, str] = {}
    for name in HIGHLIGHT_FIELDS:
        snippet = highlight(row.get(name), terms)
        if snippet is not None:
            snippets[name] = snippet
    return snippets
