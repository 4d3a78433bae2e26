"""Search speed through the project's own search function (`registry.datasets.listing.
run_search`, facets included): Tantivy (the default engine) and the old in-database SQLite
FTS5 path side by side, on the same corpus and the same query mix.

    .venv/bin/python bench/search_bench.py --sizes 100000 --engines tantivy sqlite
    .venv/bin/python bench/search_bench.py --sizes 1000000 --engines tantivy --workers 2

Per engine and size (each in its own process, so the RSS figure is that engine's):
* index build docs/s — Tantivy: a rebuild from the catalogue source (analysis in ``--workers``
  processes + Tantivy), and separately the change-feed path (rows applied by the indexer);
  FTS5: the catalogue-transaction writes in batches;
* index size on disk; peak RSS;
* p50 / p99 per query kind (single word, phrase, Chinese, two words + prefix, filtered,
  faceted, browse + facets, zero-result fallback);
* Tantivy only: freshness — publish (commit) → searchable in another reader, p50/p99.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import TOPICS, generate_corpus
from registry.database import Database
from registry.datasets.listing import run_search
from search import SearchBackend, SearchQuery, backend_for_dialect, create_search_schema, feed

FACETS = ["theme", "format", "publisher", "license", "data_grade", "sharing_type"]
EN_WORDS = ["health", "water", "energy", "education", "safety", "housing", "labor", "trade",
            "medicare", "climate", "transport", "budget", "grants", "survey", "inspection"]
EN_PHRASES = ["air quality", "bus routes", "hospital beds", "public libraries", "grain output",
              "border security", "drug supervision", "land use", "national accounts"]
ZH_COMPOUNDS = ["公交车", "财政预算", "旅游景点", "人口统计", "失信被执行人", "地铁"]


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
        mix.append(("zh compound", SearchQuery(q=rng.choice(ZH_COMPOUNDS), facets=FACETS)))
    return mix


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def corpus(source: str, n: int) -> Iterator[dict]:  # type: ignore[type-arg]
    return generate_corpus(source, n)  # type: ignore[return-value]


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(db: Database, backend: SearchBackend, per_kind: int
            ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall-clock and CPU (this thread's) milliseconds per query, by kind. On a shared,
    overloaded machine the CPU figure is the engine's own cost; wall adds the wait for a core."""
    mix = query_mix(random.Random(11), per_kind)
    with db.read() as session:
        for _, query in mix[:30]:  # warm caches and jieba
            run_search(session, backend, query)
    timings: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for kind, query in mix:
        with db.read() as session:
            t0, c0 = time.perf_counter(), time.thread_time()
            run_search(session, backend, query)
            cpu.setdefault(kind, []).append((time.thread_time() - c0) * 1000)
            timings.setdefault(kind, []).append((time.perf_counter() - t0) * 1000)
    return timings, cpu


def freshness(db: Database, engine: SearchBackend, index_dir: Path, samples: int
              ) -> list[float]:
    """Publish one entry (a committed write), then poll a second engine on the same directory
    (another gunicorn worker) until a search finds it; the indexer loop runs meanwhile."""
    from search.tantivy_engine import TantivyEngine

    reader = TantivyEngine(index_dir, freshness_wait=0.0)
    stop = threading.Event()
    loop = threading.Thread(target=engine.run, args=(stop,), daemon=True)  # type: ignore[attr-defined]
    loop.start()
    seconds: list[float] = []
    try:
        for i in range(samples):
            word = f"fresh{i}x"
            doc = {"dataset_id": f"fresh-{i}",
                   "slug": f"fresh-{i}", "version": 1, "state": "published",
                   "visibility": "public", "organization_id": "o", "organization_path": ["o"],
                   "publisher_names": [], "title_zh": None, "title_en": f"{word} data",
                   "description_zh": None, "description_en": None, "keywords": [],
                   "themes": [], "formats": [], "license": None, "sharing_type": None,
                   "open_attribute": None, "update_cycle": None, "data_grade": None,
                   "region": None, "issued": None, "modified": None}
            with db.write() as session:
                feed.publish(session, [doc], [])  # type: ignore[list-item]
            t0 = time.perf_counter()
            while True:
                with db.read() as session:
                    reader.reload()
                    if reader.search(session, SearchQuery(q=word)).total:
                        break
                if time.perf_counter() - t0 > 10:
                    raise TimeoutError(word)
                time.sleep(0.002)
            seconds.append((time.perf_counter() - t0) * 1000)
    finally:
        stop.set()
        loop.join(10)
    return seconds


def run_one(engine_name: str, size: int, args: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    workdir = Path(tempfile.mkdtemp(dir=args.workdir))
    load_before = os.getloadavg()[0]
    cpu_start = time.process_time()
    db = Database(f"sqlite:///{workdir / 'registry.db'}")
    with db.engine.begin() as conn:
        create_search_schema(conn)
    out: dict = {"engine": engine_name, "size": size}  # type: ignore[type-arg]
    if engine_name == "tantivy":
        from search.tantivy_engine import TantivyEngine

        index_dir = workdir / "tantivy"
        engine = TantivyEngine(index_dir)
        engine.attach(db.write)
        docs = list(corpus(args.source, size)) if size <= 200_000 else None
        t0, c0 = time.perf_counter(), time.process_time()
        count = engine.rebuild(lambda _s: iter(docs) if docs is not None
                               else corpus(args.source, size), workers=args.workers)
        out["build_s"] = time.perf_counter() - t0
        out["build_cpu_s"] = time.process_time() - c0
        out["build_docs_s"] = count / out["build_s"]
        out["build_note"] = (f"rebuild from the catalogue source, analysis in {args.workers} "
                             "process(es)" + ("" if docs is not None
                                               else "; includes corpus generation"))
        # the change-feed path: rows written by catalogue transactions, applied by the indexer
        feed_n = min(size, args.feed_docs)
        batch: list = []  # type: ignore[type-arg]
        for doc in corpus(args.source, feed_n):
            batch.append({**doc, "dataset_id": f"feed-{doc['dataset_id']}"})
            if len(batch) == 500:
                with db.write() as session:
                    feed.publish(session, batch, [])
                batch = []
        if batch:
            with db.write() as session:
                feed.publish(session, batch, [])
        t0 = time.perf_counter()
        while engine.index_step():
            pass
        out["feed_docs_s"] = feed_n / (time.perf_counter() - t0)
        out["feed_docs"] = feed_n
        out["index_bytes"] = directory_bytes(index_dir)
        backend: SearchBackend = engine
        out["timings"], out["cpu"] = measure(db, backend, args.per_kind)
        out["freshness_ms"] = freshness(db, engine, index_dir, args.freshness)
    else:
        backend = backend_for_dialect("sqlite")
        docs = list(corpus(args.source, size)) if size <= 200_000 else None
        t0, c0 = time.perf_counter(), time.process_time()
        batch = []
        for doc in (docs if docs is not None else corpus(args.source, size)):
            batch.append(doc)
            if len(batch) == 500:
                with db.write() as session:
                    backend.index(session, batch)
                batch = []
        if batch:
            with db.write() as session:
                backend.index(session, batch)
        with db.write() as session:
            backend.optimize(session)  # type: ignore[attr-defined]
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        out["build_s"] = time.perf_counter() - t0
        out["build_cpu_s"] = time.process_time() - c0
        out["build_docs_s"] = size / out["build_s"]
        out["build_note"] = "catalogue-transaction writes, batches of 500"
        out["index_bytes"] = directory_bytes(workdir)
        out["timings"], out["cpu"] = measure(db, backend, args.per_kind)
    out["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["load"] = (load_before, os.getloadavg()[0])
    out["cpu_total_s"] = time.process_time() - cpu_start
    db.dispose()
    shutil.rmtree(workdir, ignore_errors=True)
    return out


def report(result: dict) -> None:  # type: ignore[type-arg]
    print(f"== {result['engine']} {result['size']:,} entries ==")
    print(f"  index build: {result['build_docs_s']:,.0f} docs/s ({result['build_s']:.1f} s "
          f"wall, {result['build_cpu_s']:.1f} s CPU in this process; {result['build_note']})")
    if "feed_docs_s" in result:
        print(f"  change feed applied: {result['feed_docs_s']:,.0f} docs/s "
              f"({result['feed_docs']:,} rows)")
    print(f"  index size: {result['index_bytes'] / 2**20:,.1f} MiB")
    every: list[float] = []
    every_cpu: list[float] = []
    print(f"  {'query kind':<22} {'n':<6} {'wall p50':>9} {'wall p99':>9}   {'CPU p50':>8} "
          f"{'CPU p99':>8}  (ms)")
    for name, values in result["timings"].items():
        cpu = result["cpu"][name]
        every += values
        every_cpu += cpu
        print(f"  {name:<22} {len(values):<6} {statistics.median(values):9.2f} "
              f"{percentile(values, 99):9.2f}   {statistics.median(cpu):8.2f} "
              f"{percentile(cpu, 99):8.2f}")
    print(f"  {'ALL':<22} {len(every):<6} {statistics.median(every):9.2f} "
          f"{percentile(every, 99):9.2f}   {statistics.median(every_cpu):8.2f} "
          f"{percentile(every_cpu, 99):8.2f}")
    if "freshness_ms" in result:
        fresh = result["freshness_ms"]
        print(f"  publish -> searchable: p50 {statistics.median(fresh):.0f} ms, "
              f"p99 {percentile(fresh, 99):.0f} ms (n={len(fresh)})")
    print(f"  peak RSS: {result['rss_mib']:,.0f} MiB; machine load average "
          f"{result['load'][0]:.1f} → {result['load'][1]:.1f} on {os.cpu_count()} cores",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--engines", nargs="+", default=["tantivy", "sqlite"])
    parser.add_argument("--source", default="/work/shared/data/us-federal-datajson")
    parser.add_argument("--per-kind", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2, help="analysis processes (tantivy)")
    parser.add_argument("--feed-docs", type=int, default=20_000)
    parser.add_argument("--freshness", type=int, default=50, help="publish→search samples")
    parser.add_argument("--workdir", default=tempfile.gettempdir())
    parser.add_argument("--one", nargs=2, metavar=("ENGINE", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]), args)))
        return
    for size in args.sizes:
        for engine in args.engines:
            command = [sys.executable, __file__, "--one", engine, str(size), "--source",
                       args.source, "--per-kind", str(args.per_kind), "--workers",
                       str(args.workers), "--feed-docs", str(args.feed_docs), "--freshness",
                       str(args.freshness), "--workdir", args.workdir]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"== {engine} {size:,}: failed ==\n{done.stderr[-3000:]}", flush=True)
                continue
            report(json.loads(done.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
