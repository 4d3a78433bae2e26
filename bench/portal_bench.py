"""Portal render bench: server render time of search and dataset pages at 100k entries.

Builds (or reuses, under bench/out/) a SQLite registry of N entries from the search
engineer's corpus (`bench.corpus`: real data.json entries plus generated Chinese ones),
published through `registry.datasets.bulk.import_batch` in batches of 500 — real versions,
log leaves and index rows — then times pages through the Flask test client (no network) and
prints p50/p99 per page kind. The target is p50 <= 50 ms for search and dataset pages.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SOURCE = REPO.parent / "shared" / "data" / "us-federal-datajson"
OUT = REPO / "bench" / "out"
THEMES = {"transport": "TRAN", "health": "HEAL", "education": "EDUC", "environment": "ENVI",
          "agriculture": "AGRI", "economy": "ECON", "social": "SOCI", "culture": "EDUC",
          "safety": "JUST", "resources": "ENER", "urban": "REGI", "government": "GOVE"}
CYCLES = ("daily", "monthly", "quarterly", "annual", "irregular")
QUERIES = ("交通", "医疗机构", "公交线路", "高速公路 统计", "water", "health insurance",
           "labor statistics", "")


def metadata_of(doc: dict, i: int) -> dict:
    """A schema-valid entry from a corpus document, with the national fields filled in."""
    title = {k: v for k, v in (("zh", doc.get("title_zh")), ("en", doc.get("title_en"))) if v}
    description = {k: v[:20000] for k, v in (("zh", doc.get("description_zh")),
                                             ("en", doc.get("description_en"))) if v}
    metadata = {
        "title": {k: v[:500] for k, v in title.items()} or {"en": f"entry {i}"},
        "description": description or {"en": "(no description)"},
        "keywords": list(dict.fromkeys(k[:100] for k in doc.get("keywords", []) if k))[:20],
        "themes": sorted({THEMES[t] for t in doc.get("themes", []) if t in THEMES}),
        "resource_code": f"BENCH/{i:08d}",
        "update_cycle": CYCLES[i % len(CYCLES)],
        "open_attribute": "open", "sharing": {"type": "unconditional"}, "data_grade": "general",
        "data_items": [{"name": "地区", "type": "string"}, {"name": "数值", "type": "decimal"}],
        "distributions": [{"access_url": f"https://data.example.gov.cn/{i}.csv",
                           "format": (doc.get("formats") or ["CSV"])[0].upper()[:40]
                           if (doc.get("formats") or ["CSV"])[0].isalnum() else "CSV"}],
    }
    if doc.get("modified"):
        metadata["modified"] = str(doc["modified"])[:10]
    return {k: v for k, v in metadata.items() if v not in ([], {})}


def build(database: Path, entries: int) -> None:
    from bench.corpus import generate_corpus
    from registry.auth.principal import Principal
    from registry.bootstrap import build_state, ensure_signing_key
    from registry.config import Settings
    from registry.database import Database
    from registry.datasets.bulk import import_batch
    from registry.importers.outcomes import ImportRecord
    from registry.migrate import upgrade_database
    from registry.organizations.actions import organization_create
    from registry.organizations.models import Role

    settings = Settings(var_dir=database.parent, database_url=f"sqlite:///{database}",
                        run_background=False)
    ensure_signing_key(settings)
    db = Database(settings.database_url)
    upgrade_database(db.engine)
    state = build_state(settings, database=db)
    operator = Principal("bench", None, Role.OPERATOR)
    with state.db.write() as session:
        organization_create(session, operator, {"id": "bench", "name_zh": "基准部门"})
    started = time.perf_counter()
    batch: list[ImportRecord] = []
    for i, doc in enumerate(generate_corpus(SOURCE, entries)):
        batch.append(ImportRecord(external_id=f"bench-{i}", slug_hint=None,
                                  metadata=metadata_of(dict(doc), i), visibility="public"))
        if len(batch) == 500 or i == entries - 1:
            with state.db.write() as session:
                summary = import_batch(session, state.services, operator, "bench", batch)
                if summary.rejected:
                    raise SystemExit(f"rejected: {summary.rejected[:3]}")
            batch = []
            if (i + 1) % 10_000 == 0:
                print(f"  {i + 1} entries, {time.perf_counter() - started:.0f} s", flush=True)
    with state.db.write() as session:
        state.log.sign_checkpoint_if_grown(session)
    db.dispose()


def timed(client, urls: list[str]) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for url in urls:
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code}")
    return times


def report(name: str, times: list[float]) -> None:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"{name:<22} n={len(times):<4} p50 {statistics.median(times):6.1f} ms   "
          f"p99 {p99:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    database = OUT / f"portal-{args.entries}" / "registry.db"
    if not database.exists():
        database.parent.mkdir(parents=True, exist_ok=True)
        print(f"building a {args.entries}-entry catalogue in {database} …", flush=True)
        started = time.perf_counter()
        build(database, args.entries)
        print(f"built in {time.perf_counter() - started:.0f} s")
    from sqlalchemy import select

    from app import create_app
    from registry.bootstrap import build_state
    from registry.config import Settings
    from registry.datasets.models import Dataset
    from registry.migrate import upgrade_database

    settings = Settings(var_dir=database.parent, database_url=f"sqlite:///{database}",
                        run_background=False)
    state = build_state(settings)
    upgrade_database(state.db.engine)  # a catalogue built by an older release
    started = time.perf_counter()
    with state.db.read() as session:
        indexed = state.search.count(session)  # brings the search index up to the catalogue
    print(f"search index ready ({indexed} entries) in {time.perf_counter() - started:.1f} s")
    app = create_app(settings, state=state, background=False)
    client = app.test_client()
    with state.db.read() as session:
        count = session.query(Dataset).count()
        slugs = list(session.scalars(select(Dataset.slug).order_by(Dataset.id)
                                     .limit(args.requests * 5)))
    rng = random.Random(1)
    print(f"catalogue: {count} entries (SQLite FTS5); {args.requests} requests per page kind")
    timed(client, ["/", "/datasets?q=交通", f"/datasets/{slugs[0]}"])  # warm caches
    searches = [f"/datasets?q={QUERIES[i % len(QUERIES)]}" for i in range(args.requests)]
    faceted = [f"/datasets?q={QUERIES[i % 4]}&theme=TRAN" for i in range(args.requests)]
    datasets = [f"/datasets/{rng.choice(slugs)}" for _ in range(args.requests)]
    report("search (q)", timed(client, searches))
    report("search (q + filter)", timed(client, faceted))
    report("dataset page", timed(client, datasets))
    report("home", timed(client, ["/"] * max(20, args.requests // 10)))


if __name__ == "__main__":
    main()
