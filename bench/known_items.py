"""Known-item relevance measurement: a query built from one document must find that document
in the top 10. Reports MRR and recall@10. Used by ``bench/relevance_bench.py`` (full size) and by
the tests (a few hundred items, with a floor so regressions fail).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from search.analysis import ENGLISH_STOPWORDS
from search.documents import SearchDocument, SearchQuery, SearchResults

_WORD_RE = re.compile(r"[^\W_]+")
_CJK_RE = re.compile(r"[\u4e00-\u9fff]+")


@dataclass(frozen=True)
class KnownItem:
    query: str
    target: str  # dataset_id


@dataclass(frozen=True)
class RelevanceReport:
    queries: int
    mrr: float
    recall_at_10: float
    failures: list[KnownItem]


class Searcher:
    """Anything with the backend's ``search`` signature."""

    def search(self, session: Session, query: SearchQuery) -> SearchResults: ...


def english_title_fragment(title: str, rng: random.Random, width: int = 3) -> str | None:
    """``width`` consecutive words of the title, stop words not counted (a fragment a user
    might remember); None for titles too short to be distinctive."""
    words = [w for w in _WORD_RE.findall(title) if w.casefold() not in ENGLISH_STOPWORDS]
    if len(words) < 2:
        return None
    width = min(width, len(words))
    start = rng.randrange(len(words) - width + 1)
    return " ".join(words[start : start + width])


def chinese_title_fragment(title: str, rng: random.Random) -> str | None:
    """A substring of 4–8 characters of the longest CJK run of the title, cut at arbitrary
    character positions (so it usually starts or ends inside a word)."""
    runs = _CJK_RE.findall(title)
    if not runs:
        return None
    run = max(runs, key=len)
    if len(run) < 4:
        return run
    length = rng.randint(4, min(8, len(run)))
    start = rng.randrange(len(run) - length + 1)
    return run[start : start + length]


def english_known_items(
    docs: Sequence[SearchDocument], n: int, *, seed: int = 1
) -> list[KnownItem]:
    rng = random.Random(seed)
    candidates = [d for d in docs if d.get("title_en")]
    items: list[KnownItem] = []
    for doc in rng.sample(candidates, min(n * 2, len(candidates))):
        fragment = english_title_fragment(doc["title_en"] or "", rng)
        if fragment:
            items.append(KnownItem(fragment, doc["dataset_id"]))
        if len(items) == n:
            break
    return items


def chinese_known_items(
    docs: Sequence[SearchDocument], n: int, *, seed: int = 2
) -> list[KnownItem]:
    rng = random.Random(seed)
    candidates = [d for d in docs if d.get("title_zh")]
    items: list[KnownItem] = []
    for doc in rng.sample(candidates, min(n, len(candidates))):
        fragment = chinese_title_fragment(doc["title_zh"] or "", rng)
        if fragment:
            items.append(KnownItem(fragment, doc["dataset_id"]))
    return items


def evaluate(
    backend: Searcher, session: Session, items: Sequence[KnownItem], *, cutoff: int = 10,
    query_template: SearchQuery | None = None,
) -> RelevanceReport:
    """MRR (reciprocal rank, 0 beyond the cutoff) and recall@cutoff over ``items``."""
    template = query_template or SearchQuery()
    reciprocal = 0.0
    found = 0
    failures: list[KnownItem] = []
    for item in items:
        query = SearchQuery(q=item.query, limit=cutoff, viewer=template.viewer,
                            include_withdrawn=template.include_withdrawn)
        ranked = [hit.dataset_id for hit in backend.search(session, query).hits]
        if item.target in ranked:
            found += 1
            reciprocal += 1.0 / (ranked.index(item.target) + 1)
        else:
            failures.append(item)
    count = max(len(items), 1)
    return RelevanceReport(len(items), reciprocal / count, found / count, failures)


def make_all_visible(docs: Sequence[SearchDocument]) -> list[SearchDocument]:
    """Copies that an anonymous viewer can see (relevance is measured apart from visibility)."""
    return [{**d, "state": "published", "visibility": "public"} for d in docs]  # type: ignore[typeddict-item]
