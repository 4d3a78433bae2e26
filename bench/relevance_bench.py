"""Relevance per failure class of issue 11, our registry against a plain BM25, same queries.

The set (bench/relevance/README.md): a Chinese catalogue built from real region names and the
government vocabulary, plus the real US data.json corpus, with queries judged per failure class.
"Ours" is the registry end to end, as a user meets it: the catalogue is imported with
`ndr import --suborgs` (CKAN files for the Chinese portals, data.json for the US agencies),
then every query goes through `GET /api/v1/datasets?q=` as an anonymous citizen. The baseline
is BM25 (rank_bm25, Okapi) over jieba tokens of the same public entries' text: title,
description, keywords, publisher and catalogue labels, matching any query word.

    .venv/bin/python bench/relevance_bench.py --source ../shared/data/us-federal-datajson
    .venv/bin/python bench/relevance_bench.py --json before.json   # keep the figures

It measures whatever engine the registry is configured with (NDR_SEARCH_* as for the server).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.relevance.catalogue import (  # noqa: E402
    CLASSES,
    Entry,
    JudgedQuery,
    RelevanceSet,
    build_set,
    load_regions,
    root_org_id,
    root_org_name,
    write_ckan_files,
)

CUTOFF = 10
Ranker = Callable[[str], list[str]]  # query -> ranked entry keys (all hits, best first)


@dataclass(frozen=True)
class Scores:
    queries: int
    precision: float  # mean P@10
    mrr: float
    zero: float  # share of queries with no result at all
    fragments: float  # class 4: share of top-10 hits that match only across a word boundary


def score(rank: Ranker, queries: Sequence[JudgedQuery]) -> Scores:
    precision = reciprocal = zero = fragments = 0.0
    for query in queries:
        hits = rank(query.q)
        top = hits[:CUTOFF]
        zero += not hits
        precision += sum(key in query.relevant for key in top) / CUTOFF
        first = next((i for i, key in enumerate(top) if key in query.relevant), None)
        reciprocal += 0.0 if first is None else 1.0 / (first + 1)
        fragments += sum(key in query.fragments for key in top) / CUTOFF
    n = max(len(queries), 1)
    return Scores(len(queries), precision / n, reciprocal / n, zero / n, fragments / n)


# ------------------------------------------------------------------ the baseline


_TOKEN_RE = re.compile(r"\w", re.UNICODE)


def bm25_ranker(entries: Sequence[Entry]) -> Ranker:
    import jieba
    from rank_bm25 import BM25Okapi

    jieba.setLogLevel(60)

    def tokens(text: str) -> list[str]:
        return [t for t in jieba.lcut(text.casefold()) if _TOKEN_RE.search(t)]

    docs = [tokens(" ".join((e.title, e.description, *e.keywords, e.publisher, *e.labels)))
            for e in entries]
    keys = [e.key for e in entries]
    postings: dict[str, set[int]] = {}
    for i, doc in enumerate(docs):
        for token in doc:
            postings.setdefault(token, set()).add(i)
    bm25 = BM25Okapi(docs)

    def rank(q: str) -> list[str]:
        terms = tokens(q)
        matching = set().union(*(postings.get(t, set()) for t in terms)) if terms else set()
        if not matching:
            return []
        scores = bm25.get_scores(terms)
        order = sorted(matching, key=lambda i: (-float(scores[i]), i))
        return [keys[i] for i in order]

    return rank


# ------------------------------------------------------------------ our registry


def ndr(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "registry.cli", *args], cwd=env["NDR_ROOT"],
                          env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"ndr {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def build_registry(relevance: RelevanceSet, source: Path | None, var: Path,
                   database_url: str, registry_root: Path) -> dict[str, Any]:
    """Initialise a registry, create the root organisations, import with `ndr import`."""
    env = {**os.environ, "NDR_VAR_DIR": str(var), "DATABASE_URL": database_url,
           "NDR_ROOT": str(registry_root), "PYTHONPATH": str(registry_root)}
    ndr(env, "init")
    regions = {r.code: r for r in load_regions()}
    for region in sorted(regions.values(), key=lambda r: (r.code != r.province_code, r.code)):
        parent = [] if region.code == region.province_code else [
            "--parent", root_org_id(regions[region.province_code])]
        ndr(env, "org", "create", root_org_id(region), "--name-zh", root_org_name(region),
            "--kind", "province" if region.code == region.province_code else "city", *parent)
    files = write_ckan_files(relevance.zh, var / "catalogue")
    summary: dict[str, int] = {"created": 0, "rejected": 0}
    started = time.perf_counter()
    for root, path in sorted(files.items()):
        out = json.loads(ndr(env, "import", str(path), "--org", root, "--format", "ckan",
                             "--suborgs").strip().splitlines()[-1])
        for key in summary:
            summary[key] += out[key]
    if source is not None:
        for path in sorted(Path(source).glob("*.json")):
            org = f"us-{path.stem}"
            ndr(env, "org", "create", org, "--name-en", f"US federal data.json: {path.stem}",
                "--kind", "agency")
            out = json.loads(ndr(env, "import", str(path), "--org", org, "--format",
                                 "datajson", "--suborgs").strip().splitlines()[-1])
            for key in summary:
                summary[key] += out[key]
    summary["import_seconds"] = round(time.perf_counter() - started, 1)
    ndr(env, "search", "reindex")
    return summary


def registry_ranker(var: Path, database_url: str) -> tuple[Ranker, Callable[[], None], str]:
    """`GET /api/v1/datasets?q=` of the registry under test, as an anonymous citizen."""
    from sqlalchemy import select

    from app import create_app
    from registry.bootstrap import build_state
    from registry.config import Settings
    from registry.datasets.models import Dataset

    settings = Settings(var_dir=var, database_url=database_url, run_background=False)
    state = build_state(settings)
    app = create_app(settings, state=state, background=False)
    client = app.test_client()
    with state.db.read() as session:
        keys = dict(session.execute(select(Dataset.id, Dataset.external_id)).all())

    def rank(q: str) -> list[str]:
        response = client.get("/api/v1/datasets", query_string={"q": q, "limit": CUTOFF})
        if response.status_code != 200:
            raise RuntimeError(f"{q!r}: HTTP {response.status_code} {response.get_data()[:300]}")
        body = response.get_json()
        return [keys.get(item["id"], item["id"]) for item in body["items"]]

    def close() -> None:
        state.stop()
        state.db.dispose()

    return rank, close, str(getattr(state.search, "name", type(state.search).__name__))


# ------------------------------------------------------------------ report


def _describe(root: Path) -> str:
    done = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%h %s"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip()[:80] or "not a git checkout"


def report(relevance: RelevanceSet, rankers: dict[str, Ranker]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    names = list(rankers)
    header = f"{'failure class':32} {'n':>4}  " + "  ".join(
        f"{name + ' P@10':>12} {'MRR':>6} {'zero':>5}" for name in names)
    print(header)
    print("-" * len(header))
    for cls, queries in relevance.classes.items():
        row = {name: score(rank, queries) for name, rank in rankers.items()}
        figures[cls] = {name: s.__dict__ for name, s in row.items()}
        print(f"{CLASSES[cls]:32} {len(queries):>4}  " + "  ".join(
            f"{s.precision:>12.3f} {s.mrr:>6.3f} {s.zero:>5.2f}" for s in row.values()))
        if cls == "whole_word":
            print(f"{'   top-10 hits that are fragments':32} {'':>4}  " + "  ".join(
                f"{s.fragments:>12.3f} {'':>6} {'':>5}" for s in row.values()))
    natural = {name: score(rank, relevance.natural) for name, rank in rankers.items()}
    figures["natural"] = {name: s.__dict__ for name, s in natural.items()}
    print(f"{'natural queries (zero-result)':32} {len(relevance.natural):>4}  " + "  ".join(
        f"{s.precision:>12.3f} {s.mrr:>6.3f} {s.zero:>5.2f}" for s in natural.values()))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path,
                        default=ROOT.parent / "shared" / "data" / "us-federal-datajson",
                        help="the data.json corpus (the English half); absent: Chinese only")
    parser.add_argument("--database-url", help="an empty database (default: a SQLite file)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--registry-root", type=Path, default=ROOT,
                        help="the checkout whose registry is measured (default: this one), "
                             "so one set measures an older or newer engine side by side")
    parser.add_argument("--show-misses", type=int, default=0,
                        help="print this many queries per class where ours finds no relevant hit")
    args = parser.parse_args()
    registry_root = args.registry_root.resolve()
    sys.path.insert(0, str(registry_root))  # `registry` and `app` of the checkout measured
    source = args.source if args.source and args.source.is_dir() else None

    relevance = build_set(source)
    print(f"relevance set: {len(relevance.zh):,} Chinese entries (real region names, "
          f"government vocabulary), {len(relevance.us):,} public US data.json entries; "
          f"{sum(map(len, relevance.classes.values()))} judged queries, "
          f"{len(relevance.natural)} natural queries")
    with tempfile.TemporaryDirectory(prefix="ndr-relevance-") as tmp:
        var = Path(tmp) / "var"
        database_url = args.database_url or f"sqlite:///{var / 'registry.db'}"
        summary = build_registry(relevance, source, var, database_url, registry_root)
        print(f"registry measured: {registry_root} ({_describe(registry_root)})")
        print(f"imported with ndr import --suborgs: {summary}")
        ours, close, engine = registry_ranker(var, database_url)
        try:
            baseline = bm25_ranker(relevance.entries)
            print(f"ours = the registry's search API (engine: {engine}); "
                  f"BM25 = rank_bm25 Okapi over jieba tokens\n")
            figures = report(relevance, {"ours": ours, "BM25": baseline})
            for cls, queries in [*relevance.classes.items(), ("natural", relevance.natural)]:
                misses = [q.q for q in queries
                          if not any(k in q.relevant for k in ours(q.q)[:CUTOFF])]
                if args.show_misses and misses:
                    print(f"  {cls}: no relevant hit in ours' top 10 for "
                          f"{misses[:args.show_misses]}")
        finally:
            close()
    if args.json:
        args.json.write_text(json.dumps({"engine": engine, "import": summary,
                                         "figures": figures}, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
