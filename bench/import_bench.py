"""Bulk import benchmark: the real data.json corpus scaled to N entries, end to end.

End to end means: read the data.json file, map and validate every entry, then publish in batches
(versions inserted, one log leaf each with stored tree hashes, search index rows, receipts), on
SQLite and on PostgreSQL. Each run is a fresh child process so its peak RSS is its own.

    .venv/bin/python bench/import_bench.py --entries 100000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.support.postgres_server import admin_url as postgres_admin_url  # noqa: E402

CORPUS = REPO.parent / "shared" / "data" / "us-federal-datajson"


def scaled_datajson(entries: int, out: Path) -> int:
    """Write a data.json with `entries` datasets: the real ones, repeated with new identifiers
    and a copy number in the title, so every entry is a distinct dataset to the importer."""
    real = []
    for path in sorted(CORPUS.glob("*.json")):
        real.extend(json.loads(path.read_text(encoding="utf-8-sig"))["dataset"])
    datasets = []
    for i in range(entries):
        source = dict(real[i % len(real)])
        copy = i // len(real)
        if copy:
            source["identifier"] = f"{source.get('identifier', i)}#copy{copy}"
            source["title"] = f"{source.get('title', '')} (series {copy})"
        datasets.append(source)
    out.write_text(json.dumps({"conformsTo": "https://project-open-data.cio.gov/v1.1/schema",
                               "dataset": datasets}))
    return len(real)


def child(database_url: str, var_dir: str, data: str) -> None:
    """Runs in a fresh process: init, one organisation, import, print figures as JSON."""
    os.environ["NDR_VAR_DIR"] = var_dir
    os.environ["DATABASE_URL"] = database_url
    from registry.auth.principal import Principal
    from registry.bootstrap import build_state, ensure_signing_key
    from registry.cli import run_import
    from registry.config import Settings
    from registry.database import Database
    from registry.migrate import upgrade_database
    from registry.organizations.actions import organization_create
    from registry.organizations.models import Role

    settings = Settings()
    ensure_signing_key(settings)
    upgrade_database(Database(database_url).engine)
    state = build_state(settings)
    with state.db.write() as session:
        organization_create(session, Principal("bench", None, Role.OPERATOR),
                            {"id": "us", "name_en": "United States federal agencies"})
    started = time.perf_counter()
    summary = run_import(state, Path(data), "us", "datajson", suborgs=True, batch_size=1000)
    elapsed = time.perf_counter() - started
    with state.db.read() as session:
        log_size = state.log.size(session)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reader_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"created": summary.created, "rejected": len(summary.rejected),
                      "seconds": elapsed, "log_size": log_size, "peak_rss_mib": peak_kib / 1024,
                      "reader_rss_mib": reader_kib / 1024}))


def run_child(database_url: str, data: Path) -> dict:
    with tempfile.TemporaryDirectory() as var_dir:
        out = subprocess.run([sys.executable, __file__, "--child", database_url, var_dir,
                              str(data)], capture_output=True, text=True, check=False, cwd=REPO)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--child", nargs=3, metavar=("URL", "VAR", "DATA"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        pg_admin = (stack.enter_context(postgres_admin_url(os.environ.get("NDR_BENCH_PG")))
                    if "postgres" in args.backends else "")
        data = Path(tmp) / "scaled-data.json"
        real = scaled_datajson(args.entries, data)
        print(f"corpus: {real} real data.json datasets scaled to {args.entries} entries "
              f"({data.stat().st_size / 1e6:.0f} MB)")
        print(f"{'backend':<10} {'entries':>8} {'rejected':>8} {'seconds':>8} {'entries/s':>10} "
              f"{'writer RSS MiB':>14} {'reader RSS MiB':>14} {'log leaves':>10}")
        for backend in args.backends.split(","):
            if backend == "sqlite":
                url, cleanup = f"sqlite:///{tmp}/bench.db", None
            else:
                import psycopg

                name = f"ndr_bench_{uuid.uuid4().hex[:8]}"
                with psycopg.connect(pg_admin, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                url = pg_admin.rsplit("/", 1)[0] + "/" + name
                cleanup = name
            try:
                r = run_child(url, data)
            finally:
                if cleanup:
                    with psycopg.connect(pg_admin, autocommit=True) as conn:
                        conn.execute(f'DROP DATABASE IF EXISTS "{cleanup}" WITH (FORCE)')
            print(f"{backend:<10} {r['created']:>8} {r['rejected']:>8} {r['seconds']:>8.1f} "
                  f"{r['created'] / r['seconds']:>10.0f} {r['peak_rss_mib']:>14.0f} "
                  f"{r['reader_rss_mib']:>14.0f} {r['log_size']:>10}")


if __name__ == "__main__":
    main()
