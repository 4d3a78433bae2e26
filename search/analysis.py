"""Text analysis shared by every backend: the index and the query go through the same code.

Why analyse in Python instead of in the database: SQLite FTS5 has no Chinese segmenter,
PostgreSQL's parser depends on the server locale, and Elasticsearch needs a plugin for Chinese.
Producing the tokens here and handing each engine a plain space-separated token stream makes the
three backends agree exactly, and lets one test suite pin the behaviour down.

Chinese: every run of CJK characters is indexed as its overlapping character bigrams
followed by its last character alone (so every character starts some token). A query is
segmented with jieba into words, and every word becomes the *phrase* of its bigrams, so
交通 matches inside 交通运输局 and a fragment of a long title matches wherever it occurs,
while jieba keeps unrelated words of a query apart (北京交通数据 -> 北京 · 交通 · 数据,
each found independently).

English: lower-cased, a short stop list removed, Snowball-stemmed; the last query term is
also matched as a prefix (typing "transp" finds "transportation").
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

# CJK Unified Ideographs (+ extension A and compatibility ideographs); kana/hangul are out of
# scope for a Chinese catalogue and fall through to the latin tokenizer rule below.
_CJK_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN_RE = re.compile(rf"[{_CJK_CLASS}]+|[^\W_{_CJK_CLASS}]+", re.UNICODE)
_CLASSIFIED_RE = re.compile(rf"([{_CJK_CLASS}]+)|([^\W_{_CJK_CLASS}]+)", re.UNICODE)
_STEM_CACHE: dict[str, str] = {}
_STEM_CACHE_LIMIT = 500_000
LATIN_WORD_RE = re.compile(rf"[^\W_{_CJK_CLASS}]+", re.UNICODE)
_CJK_RUN_RE = re.compile(rf"^[{_CJK_CLASS}]+$")
_HAS_CJK_RE = re.compile(rf"[{_CJK_CLASS}]")

ENGLISH_STOPWORDS = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "it", "of",
     "on", "or", "the", "to", "with"]
)

_thread_local = threading.local()
_jieba_lock = threading.Lock()
_jieba_tokenizer = None


def _jieba():  # type: ignore[no-untyped-def]
    """The jieba tokenizer, built once on first use from the dictionary inside the package.

    jieba loads (or builds and caches) its prefix dictionary lazily; doing it under a lock
    keeps two request threads from building it twice. Its INFO logging is silenced because it
    would otherwise print to stderr on every process start.
    """
    global _jieba_tokenizer
    if _jieba_tokenizer is None:
        with _jieba_lock:
            if _jieba_tokenizer is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                _jieba_tokenizer = tokenizer
    return _jieba_tokenizer


def _stemmer() -> snowballstemmer.stemmer:  # type: ignore[name-defined]
    """This thread's Snowball stemmer (finding F3: a stemmer object keeps its current word in
    instance state, so one stemmer shared by request threads mixes up their words)."""
    stemmer = getattr(_thread_local, "stemmer", None)
    if stemmer is None:
        stemmer = snowballstemmer.stemmer("english")
        _thread_local.stemmer = stemmer
    return stemmer


def has_cjk(text: str) -> bool:
    return _HAS_CJK_RE.search(text) is not None


def is_cjk_token(token: str) -> bool:
    return _CJK_RUN_RE.match(token) is not None


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Snowball stem of an already lower-cased word (cached: catalogue vocabularies are small)."""
    return _stemmer().stemWord(word)


def cjk_bigrams(run: str) -> list[str]:
    """Overlapping character bigrams of a CJK run; a single character stands for itself."""
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def index_tokens(text: str | None) -> list[str]:
    """Tokens stored in the index for one field, in positional order.

    Bigrams of a run are emitted consecutively so that a query word (a phrase of bigrams)
    matches exactly the substrings of the original text. This is the bulk-import hot loop,
    hence one classifying regex and a plain dict as stem cache.
    """
    if not text:
        return []
    tokens: list[str] = []
    stems = _STEM_CACHE
    stemmer = _stemmer()
    for cjk, latin in _CLASSIFIED_RE.findall(text.casefold()):
        if cjk:
            if len(cjk) == 1:
                tokens.append(cjk)
                continue
            tokens.extend([cjk[i : i + 2] for i in range(len(cjk) - 1)])
            # The last character starts no bigram; without it a one-character query
            # word (matched as "bigrams starting with it") would miss run endings.
            tokens.append(cjk[-1])
        elif latin not in ENGLISH_STOPWORDS:
            stemmed = stems.get(latin)
            if stemmed is None:
                stemmed = stemmer.stemWord(latin)
                if len(stems) < _STEM_CACHE_LIMIT:  # bounded: vocabularies have a long tail
                    stems[latin] = stemmed
            tokens.append(stemmed)
    return tokens


def index_text(*texts: str | None) -> str:
    """Space-joined index tokens of several texts (what FTS5 / tsvector / ES receive)."""
    return " ".join(token for text in texts for token in index_tokens(text))


def text_tokens_of(title_zh: str | None, title_en: str | None, keywords: list[str],
                   themes: list[str], description_zh: str | None,
                   description_en: str | None) -> dict[str, str]:
    """The index text of a document's own fields (everything but the publisher names, which
    belong to its organisation), so it can be computed before the document is written."""
    return {"title": index_text(title_zh, title_en),
            "keywords": index_text(*keywords, *themes),
            "description": index_text(description_zh, description_en)}


@dataclass(frozen=True)
class QueryTerm:
    """One query unit: all of ``tokens`` must appear consecutively (a phrase).

    ``prefix`` marks a term whose last token may be a prefix of an indexed token.
    ``surface`` is what the user typed, used for highlighting.
    """

    tokens: tuple[str, ...]
    prefix: bool
    surface: str


def _segment_chinese(run: str) -> list[str]:
    return [w for w in _jieba().cut(run, HMM=True) if w.strip()]


def _chinese_terms(run: str) -> list[QueryTerm]:
    terms: list[QueryTerm] = []
    for word in _segment_chinese(run):
        if len(word) == 1:
            # A lone character cannot be a bigram phrase; match it as the start of a bigram.
            terms.append(QueryTerm((word,), prefix=True, surface=word))
        else:
            terms.append(QueryTerm(tuple(cjk_bigrams(word)), prefix=False, surface=word))
    return terms


def _english_term(word: str, *, is_last: bool) -> QueryTerm:
    stemmed = stem(word)
    if not is_last:
        return QueryTerm((stemmed,), prefix=False, surface=word)
    # The stem may not be a prefix of the typed word (happy -> happi); their common prefix is,
    # and it is also a prefix of every indexed form of longer words that start with it.
    common = _common_prefix(word, stemmed)
    return QueryTerm((common or stemmed,), prefix=True, surface=word)


def _common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]


def query_terms(q: str | None) -> list[QueryTerm]:
    """Analyse a user query (Chinese, English or both) into AND-ed phrase terms.

    Only the final term gets prefix matching, and only when the query does not end in
    whitespace (the user is still typing that word).
    """
    if not q or not q.strip():
        return []
    pieces = _TOKEN_RE.findall(q.casefold())
    words = [p for p in pieces if is_cjk_token(p) or p not in ENGLISH_STOPWORDS]
    if not words:
        words = pieces  # a query made only of stop words still means something
    still_typing = not q[-1].isspace()
    terms: list[QueryTerm] = []
    for position, piece in enumerate(words):
        if is_cjk_token(piece):
            terms.extend(_chinese_terms(piece))
        else:
            is_last = still_typing and position == len(words) - 1
            terms.append(_english_term(piece, is_last=is_last))
    return _dedupe(terms)


def _dedupe(terms: list[QueryTerm]) -> list[QueryTerm]:
    seen: set[tuple[tuple[str, ...], bool]] = set()
    unique: list[QueryTerm] = []
    for term in terms:
        key = (term.tokens, term.prefix)
        if key not in seen:
            seen.add(key)
            unique.append(term)
    return unique


def warm_up() -> None:
    """Load the jieba dictionary now (e.g. in a gunicorn post-fork hook) instead of on a query."""
    _jieba()


__all__ = [
    "ENGLISH_STOPWORDS",
    "LATIN_WORD_RE",
    "QueryTerm",
    "cjk_bigrams",
    "has_cjk",
    "index_text",
    "index_tokens",
    "query_terms",
    "stem",
    "warm_up",
]


# ---------------------------------------------------------------- words and fragments
#
# The engines of `search.query_plan` index every text field twice: as *words* (jieba's precise
# segmentation of Chinese, Snowball stems of English) and as *fragments* (CJK bigrams). A query
# word matching a whole indexed word ranks above one matching only inside a longer word
# (市政 inside 天津市政府), and a fragment still matches where segmentation differs.

_WORD_CACHE_LIMIT = 200_000
_word_cache: dict[str, tuple[str, ...]] = {}


def chinese_words(run: str) -> tuple[str, ...]:
    """jieba's precise segmentation of one CJK run, plus the parts of compound words
    (财政预算 → 财政预算, 财政, 预算), so a query for a part is a whole-word match too.
    Cached: titles, departments and keywords repeat across a catalogue."""
    cached = _word_cache.get(run)
    if cached is not None:
        return cached
    tokenizer = _jieba()
    words: list[str] = []
    for word in tokenizer.cut(run, HMM=True):
        if not word.strip():
            continue
        words.append(word)
        words.extend(compound_parts(word))
    result = tuple(words)
    if len(_word_cache) < _WORD_CACHE_LIMIT:
        _word_cache[run] = result
    return result


def compound_parts(word: str) -> list[str]:
    """The parts of a compound that splits cleanly into two dictionary words of two or more
    characters (天津市政府 → 天津, 市政府, 天津市, 政府). Unlike jieba's search mode this never
    yields a word across a boundary (市政 is not a part of 天津市政府)."""
    if len(word) < 4:
        return []
    freq = _jieba().FREQ
    parts: list[str] = []
    for cut in range(2, len(word) - 1):
        left, right = word[:cut], word[cut:]
        if freq.get(left) and freq.get(right):
            parts.extend((left, right))
    return list(dict.fromkeys(parts))


def search_subwords(word: str) -> list[str]:
    """Finer pieces of a query word for the zero-result fallback: the clean compound parts
    (财政预算 → 财政, 预算), else jieba's search-mode sub-words (公交车 → 公交;
    被执行人 → 执行, 行人). Two-character words have none (see `query_plan`)."""
    if not is_cjk_token(word) or len(word) < 3:
        return []
    parts = compound_parts(word)
    if not parts:
        parts = [w for w in _jieba().cut_for_search(word, HMM=True)
                 if w != word and len(w) >= 2 and w.strip()]
    return list(dict.fromkeys(parts))


def word_tokens(text: str | None) -> list[str]:
    """The word stream of a text: Chinese words (and compound parts), English stems without
    stop words."""
    if not text:
        return []
    tokens: list[str] = []
    stems = _STEM_CACHE
    stemmer = _stemmer()
    for cjk, latin in _CLASSIFIED_RE.findall(text.casefold()):
        if cjk:
            tokens.extend(chinese_words(cjk))
        elif latin not in ENGLISH_STOPWORDS:
            stemmed = stems.get(latin)
            if stemmed is None:
                stemmed = stemmer.stemWord(latin)
                if len(stems) < _STEM_CACHE_LIMIT:
                    stems[latin] = stemmed
            tokens.append(stemmed)
    return tokens


def fragment_tokens(text: str | None) -> list[str]:
    """The fragment stream of a text: each CJK run's overlapping bigrams then its last
    character (positions consecutive, so a query word is a phrase of its bigrams)."""
    if not text:
        return []
    tokens: list[str] = []
    for run in _CJK_FIND_RE.findall(text):
        if len(run) > 1:
            tokens.extend([run[i : i + 2] for i in range(len(run) - 1)])
        tokens.append(run[-1])
    return tokens


_CJK_FIND_RE = re.compile(rf"[{_CJK_CLASS}]+")
