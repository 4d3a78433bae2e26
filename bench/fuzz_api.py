"""Fuzz the API with schemathesis against its own OpenAPI document, on a live server.

Builds a fresh registry (SQLite, or PostgreSQL with --postgres URL), loads a few datasets, serves
it with werkzeug on 127.0.0.1, and runs `schemathesis run` with an editor's bearer token so the
write paths are exercised too. Prints the number of requests and of 5xx responses.

    .venv/bin/python bench/fuzz_api.py --max-examples 100
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def serve(database_url: str, var_dir: Path):  # type: ignore[no-untyped-def]
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    from tests.conftest import build_registry

    harness = build_registry(database_url, var_dir)
    harness.org("mot", name_zh="交通运输部")
    token = harness.token("mot", "admin")
    for i in range(5):
        response = harness.client.post("/api/v1/datasets", headers=harness.auth(token), json={
            "slug": f"seed-{i}", "metadata": {"title": {"zh": f"数据集{i}"},
                                               "description": {"en": "seed"}}})
        assert response.status_code == 201, response.get_data(as_text=True)
    with harness.state.db.write() as session:
        harness.state.log.sign_checkpoint_if_grown(session)
    server = make_server("127.0.0.1", 0, harness.app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, token


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-examples", type=int, default=50)
    parser.add_argument("--postgres", help="SQLAlchemy URL of an empty PostgreSQL database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.postgres or f"sqlite:///{tmp}/fuzz.db"
        server, token = serve(url, Path(tmp) / "var")
        base = f"http://127.0.0.1:{server.server_port}"
        report = Path(tmp) / "report.json"
        command = [str(REPO / ".venv" / "bin" / "schemathesis"), "run",
                   f"{base}/api/v1/openapi.json", "--url", base,
                   "--checks", "not_a_server_error", "--max-examples", str(args.max_examples),
                   "-H", f"Authorization: Bearer {token}", "--report", "ndjson",
                   "--report-ndjson-path", str(report), "--no-color"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        server.shutdown()
        lines = result.stdout.strip().splitlines()
        start = next((i for i, line in enumerate(lines) if line.startswith("Failures")
                      or "FAILURES" in line), max(0, len(lines) - 25))
        print("\n".join(lines[start:]))
        requests = server_errors = 0
        if report.exists():
            for line in report.read_text().splitlines():
                event = json.loads(line)
                for payload in _responses(event):
                    requests += 1
                    server_errors += payload >= 500
        print(f"\nschemathesis: {requests} responses recorded, {server_errors} with status 5xx;"
              f" exit code {result.returncode}")
        return 0 if server_errors == 0 and result.returncode == 0 else 1


def _responses(event: object):  # type: ignore[no-untyped-def]
    """Status codes of every response recorded anywhere in one ndjson event."""
    if isinstance(event, dict):
        if "status_code" in event and isinstance(event["status_code"], int):
            yield event["status_code"]
        for value in event.values():
            yield from _responses(value)
    elif isinstance(event, list):
        for value in event:
            yield from _responses(value)


if __name__ == "__main__":
    raise SystemExit(main())
