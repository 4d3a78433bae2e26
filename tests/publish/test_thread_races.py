"""F3: request threads share the analyser and the columnar snapshot; neither may race."""

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


def _doc(i: int) -> dict:
    from datetime import date

    return {"dataset_id": f"d{i}", "slug": f"d{i}", "version": 1, "state": "published",
            "visibility": "public", "organization_id": "mot", "organization_path": ["mot"],
            "publisher_names": ["mot"], "title_zh": f"交通{i}", "title_en": f"transport {i}",
            "description_zh": None, "description_en": None, "keywords": [f"k{i % 7}"],
            "themes": ["TRAN"], "formats": ["CSV"], "license": None, "sharing_type": None,
            "open_attribute": None, "update_cycle": None, "data_grade": None, "region": None,
            "issued": None, "modified": date(2024, 1, 1 + i % 28)}


def test_snapshot_overlay_counts_while_another_thread_catches_up(database_url: str) -> None:
    """Readers count from the overlay while a writer's changes are being added to it."""
    from sqlalchemy.orm import Session

    from registry.database import make_engine
    from search import SearchQuery, create_search_schema, make_backend

    engine = make_engine(database_url)
    with engine.begin() as connection:
        create_search_schema(connection)
    backend = make_backend("sqlite" if database_url.startswith("sqlite") else "postgres")
    with Session(engine.execution_options(write=True)) as session:
        backend.index(session, [_doc(i) for i in range(40)])
        session.commit()
    with Session(engine) as session:
        backend.columnar.rebuild(session)
    stop = threading.Event()
    errors: list[BaseException] = []
    totals: list[int] = []

    def read() -> None:
        while not stop.is_set():
            try:
                with Session(engine) as session:
                    totals.append(backend.search(session, SearchQuery(
                        facets=("keyword",))).total)
            except BaseException as exc:  # the race shows up as any exception
                errors.append(exc)
                return

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    readers = [threading.Thread(target=read) for _ in range(4)]
    try:
        for thread in readers:
            thread.start()
        for i in range(40, 160):
            with Session(engine.execution_options(write=True)) as session:
                backend.index(session, [_doc(i)])
                session.commit()
            with Session(engine) as session:
                backend.search(session, SearchQuery(facets=("keyword",)))
            if errors:
                break
    finally:
        stop.set()
        for thread in readers:
            thread.join(30)
        sys.setswitchinterval(interval)
        engine.dispose()
    assert not errors, repr(errors[0])
    assert totals and max(totals) <= 160
