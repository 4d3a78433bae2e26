"""Known-item relevance: MRR and recall@10 on the real US catalogue (English) and on generated
Chinese entries, SQLite FTS5 by default (``--backend postgres`` uses a scratch database).

    .venv/bin/python bench/relevance_bench.py --source /work/shared/data/us-federal-datajson
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import chinese_corpus, load_real_entries, real_document
from bench.relevance import chinese_known_items, english_known_items, evaluate, make_all_visible
from registry.database import Database
from search import backend_for_dialect, create_search_schema

PG_ADMIN = os.environ.get("NDR_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", default="/work/shared/data/us-federal-datajson")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--chinese", type=int, default=20_000, help="generated Chinese entries")
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()

    real = make_all_visible([real_document(i, e, random.Random(i), vary=False)
                             for i, e in enumerate(load_real_entries(args.source))])
    zh = make_all_visible([{**d, "dataset_id": f"zh-{d['dataset_id']}"}  # type: ignore[misc]
                           for d in chinese_corpus(args.chinese)])
    drop = None
    if args.backend == "sqlite":
        url = f"sqlite:///{Path(tempfile.mkdtemp()) / 'relevance.db'}"
    else:
        import psycopg

        name = f"ndr_rel_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"

        def drop() -> None:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    db = Database(url)
    try:
        with db.engine.begin() as conn:
            create_search_schema(conn)
        backend = backend_for_dialect(db.engine.dialect.name)
        with db.write() as session:
            backend.index(session, real)
            backend.index(session, zh)
        sets = {
            f"English, real catalogue ({len(real):,} entries)":
                english_known_items(real, args.queries),
            f"Chinese, generated ({len(zh):,} entries + the English ones)":
                chinese_known_items(zh, args.queries),
        }
        with db.read() as session:
            for label, items in sets.items():
                t0 = time.perf_counter()
                report = evaluate(backend, session, items)
                took = time.perf_counter() - t0
                print(f"{args.backend}: {label}: {report.queries} known-item queries  "
                      f"MRR {report.mrr:.3f}  recall@10 {report.recall_at_10:.3f}  "
                      f"({took / max(report.queries, 1) * 1000:.1f} ms/query)")
                # A templated corpus repeats title fragments: a query that more than 10 titles
                # contain cannot guarantee its target a top-10 place. Report those apart.
                titles = [(d.get("title_zh") or "") + " " + (d.get("title_en") or "")
                          for d in (*real, *zh)]
                distinctive = [it for it in items
                               if sum(it.query in t for t in titles) <= 10]
                if distinctive:
                    sub = evaluate(backend, session, distinctive)
                    print(f"    of which {sub.queries} distinctive (<=10 titles contain the "
                          f"query): MRR {sub.mrr:.3f}  recall@10 {sub.recall_at_10:.3f}")
                for miss in report.failures[:3]:
                    print(f"    miss: {miss.query!r} -> {miss.target}")
    finally:
        db.dispose()
        if drop:
            drop()


if __name__ == "__main__":
    main()
