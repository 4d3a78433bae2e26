"""Search speed: index build throughput, index size and query latency (p50/p99) for a fixed
query mix, SQLite FTS5 and PostgreSQL side by side.

    .venv/bin/python bench/search_bench.py --sizes 100000 1000000 \
        --source /work/shared/data/us-federal-datajson

PostgreSQL runs in a scratch database created and dropped here (NDR_BENCH_PG_ADMIN, default
postgresql://postgres@127.0.0.1:5432/test). Prints one block per (backend, size).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import TOPICS, generate_corpus
from registry.database import Database
from search import SearchQuery, backend_for_dialect, create_search_schema
from search.sqlite_fts import SqliteFtsBackend

PG_ADMIN = os.environ.get("NDR_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
FACETS = ["theme", "format", "publisher", "license", "data_grade", "sharing_type"]
EN_WORDS = ["health", "water", "energy", "education", "safety", "housing", "labor", "trade",
            "medicare", "climate", "transport", "budget", "grants", "survey", "inspection"]
EN_PHRASES = ["air quality", "bus routes", "hospital beds", "public libraries", "grain output",
              "border security", "drug supervision", "land use", "national accounts"]


def query_mix(rng: random.Random, per_kind: int) -> list[tuple[str, SearchQuery]]:
    zh_words = [zh for topics in TOPICS.values() for zh, _ in topics]
    zh_short = sorted({w[:2] for w in zh_words})
    mix: list[tuple[str, SearchQuery]] = []
    for _ in range(per_kind):
        mix.append(("single word", SearchQuery(q=rng.choice(EN_WORDS))))
        mix.append(("phrase", SearchQuery(q=rng.choice(EN_PHRASES))))
        mix.append(("zh", SearchQuery(q=rng.choice(zh_words + zh_short))))
        mix.append(("en 2 words + prefix", SearchQuery(q=f"{rng.choice(EN_WORDS)} "
                                                       f"{rng.choice(EN_WORDS)[:4]}")))
        mix.append(("filtered", SearchQuery(q=rng.choice(zh_short + EN_WORDS), filters={
            "format": [rng.choice(["CSV", "JSON", "XLSX"])],
            "data_grade": [rng.choice(["core", "important", "general"])]})))
        mix.append(("faceted", SearchQuery(q=rng.choice(zh_short + EN_WORDS), facets=FACETS)))
        mix.append(("browse+facets", SearchQuery(filters={"theme": [rng.choice(list(TOPICS))]},
                                                 facets=FACETS)))
    return mix


def batches(source: str, n: int, size: int) -> Iterator[list]:  # type: ignore[type-arg]
    batch = []
    for doc in generate_corpus(source, n):
        batch.append(doc)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def build(db: Database, source: str, n: int, batch_size: int) -> tuple[float, float]:
    """Index n docs in write transactions of batch_size; returns (indexing s, generation s)."""
    backend = backend_for_dialect(db.engine.dialect.name)
    indexing = generating = 0.0
    started = time.perf_counter()
    for batch in batches(source, n, batch_size):
        t0 = time.perf_counter()
        generating += t0 - started
        with db.write() as session:
            backend.index(session, batch)
        started = time.perf_counter()
        indexing += started - t0
    t0 = time.perf_counter()
    with db.write() as session:
        if isinstance(backend, SqliteFtsBackend):
            backend.optimize(session)
    if db.is_sqlite:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    else:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE search_document")
            conn.exec_driver_sql("VACUUM ANALYZE search_facet")
    indexing += time.perf_counter() - t0
    return indexing, generating


def index_size(db: Database, path: Path | None) -> int:
    if path is not None:
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    with db.read() as session:
        return int(session.execute(text(
            "SELECT pg_total_relation_size('search_document') + "
            "pg_total_relation_size('search_facet')")).scalar_one())


def snapshot_bytes(backend: Any) -> int:
    snapshot = backend.columnar._snapshot
    arrays = [snapshot.state, snapshot.public, snapshot.org, snapshot.modified, snapshot.issued]
    for column in snapshot.fields.values():
        arrays += [column.doc_ptr, column.doc_vals, column.val_ptr, column.val_docs]
    return sum(a.nbytes for a in arrays)


def measure(db: Database, per_kind: int, columnar: bool = False
            ) -> tuple[dict[str, list[float]], str]:
    """Time the mix; with `columnar`, totals and facets come from the in-memory snapshot
    (built first, its build time and size reported), otherwise from SQL."""
    backend = backend_for_dialect(db.engine.dialect.name)
    note = "totals and facets by SQL"
    if columnar:
        t0 = time.perf_counter()
        with db.read() as session:
            backend.columnar.rebuild(session)
        note = (f"totals and facets from the columnar snapshot (built in "
                f"{time.perf_counter() - t0:.1f} s, {snapshot_bytes(backend) / 2**20:,.0f} MiB)")
    mix = query_mix(random.Random(11), per_kind)
    timings: dict[str, list[float]] = {}
    with db.read() as session:
        for _, query in mix[:20]:  # warm the page cache and jieba
            backend.search(session, query)
    for kind, query in mix:
        with db.read() as session:
            t0 = time.perf_counter()
            backend.search(session, query)
            timings.setdefault(kind, []).append((time.perf_counter() - t0) * 1000)
    return timings, note


def with_database(kind: str, workdir: Path) -> tuple[Database, Path | None, Callable[[], None]]:
    if kind == "sqlite":
        path = workdir / f"bench-{uuid.uuid4().hex[:8]}.db"
        db = Database(f"sqlite:///{path}")

        def cleanup() -> None:
            db.dispose()
            for p in path.parent.glob(path.name + "*"):
                p.unlink()

        return db, path, cleanup
    import psycopg

    name = f"ndr_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = Database(f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}")

    def drop() -> None:
        db.dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return db, None, drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--source", default="/work/shared/data/us-federal-datajson")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--per-kind", type=int, default=40)
    parser.add_argument("--workdir", default=tempfile.gettempdir())
    args = parser.parse_args()
    for size in args.sizes:
        for kind in args.backends:
            db, path, cleanup = with_database(kind, Path(args.workdir))
            try:
                with db.engine.begin() as conn:
                    create_search_schema(conn)
                indexing, generating = build(db, args.source, size, args.batch)
                size_bytes = index_size(db, path)
                runs = [measure(db, args.per_kind, columnar=False),
                        measure(db, args.per_kind, columnar=True)]
            finally:
                cleanup()
            print(f"== {kind} {size:,} entries ==")
            print(f"  index build: {size / indexing:,.0f} docs/s ({indexing:.1f} s; corpus "
                  f"generation {generating:.1f} s not counted), batch {args.batch}")
            print(f"  index size: {size_bytes / 2**20:,.1f} MiB "
                  f"({'database file' if path else 'search_document + search_facet'})")
            for timings, note in runs:
                print(f"  -- {note}")
                every: list[float] = []
                for name, values in timings.items():
                    every += values
                    print(f"  {name:<22} n={len(values):<4} p50 "
                          f"{statistics.median(values):7.2f} ms   p99 "
                          f"{percentile(values, 99):8.2f} ms   max {max(values):8.2f} ms")
                print(f"  {'ALL':<22} n={len(every):<4} p50 {statistics.median(every):7.2f} ms"
                      f"   p99 {percentile(every, 99):8.2f} ms")
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"  peak RSS of this process so far: {rss:,.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
