"""F3: request threads share the analyser; it may not race. (The columnar snapshot whose overlay
also raced is retired: Tantivy answers totals and facets.)"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from search.analysis import index_tokens

WORDS = ["transportation", "statistics", "relational", "hopefulness", "generalizations",
         "conditional", "organizations", "environmental", "publishing", "monitoring"]


def test_stemming_from_many_threads_gives_the_single_thread_stems() -> None:
    texts = [" ".join(WORDS[i:] + WORDS[:i]) + f" unique{i}ings" for i in range(len(WORDS))]
    expected = {text: index_tokens(text) for text in texts}
    barrier = threading.Barrier(8)

    def work(n: int) -> list[tuple[str, list[str]]]:
        barrier.wait()
        out = []
        for k in range(400):
            text = texts[(n + k) % len(texts)] + f" run{n}x{k}ning"  # defeats the stem cache
            out.append((text, index_tokens(text)))
        return out

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so a shared stemmer would be caught
    try:
        with ThreadPoolExecutor(8) as pool:
            results = [r for chunk in pool.map(work, range(8)) for r in chunk]
    finally:
        sys.setswitchinterval(interval)
    for text, tokens in results:
        base = text.rsplit(" ", 1)[0]
        assert tokens[:-1] == expected[base], text
        assert tokens[-1] == index_tokens(text.rsplit(" ", 1)[1])[0]
