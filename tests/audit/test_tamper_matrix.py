"""Tamper matrix (issue 13, item 2): one byte flipped in every table and column that holds log
or catalogue state, and which detector fires.

For each cell, with the real background loops of a running registry (checkpoint signer and
self-audit, 1 s ticks) and a real HTTP server:

* phase A (loops stopped): flip, then ask the offline detectors - a fresh `ndr monitor` replay
  over HTTP, and `ndr verify` of the affected version's proof bundle as the server now serves
  it (a 503 refusal is the server declining to vouch, also recorded) - then restore;
* phase B (loops running): flip, and time how long until ``/readyz`` turns 503 naming the
  leaf; then restore and acknowledge, as the operator would.

Every row must be caught by the self-audit within 60 s. The table is written to
``bench/out/tamper-matrix-<db>.txt`` for the closing note.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from werkzeug.serving import make_server

from anchoring import tlog
from anchoring.auditor.monitor import MonitorAlarm, run_monitor
from anchoring.auditor.verify import verify_bundle
from anchoring.bundle import parse_bundle
from anchoring.checkpointer import CheckpointLoop
from anchoring.self_audit import acknowledge_alarms
from registry.bootstrap import build_anchor_worker, build_self_audit
from tests.audit.helpers import Catalogue, build_catalogue

OUT = Path(__file__).resolve().parents[2] / "bench" / "out"
DEADLINE = 60.0


@dataclass(frozen=True)
class Cell:
    table: str
    column: str
    where: str
    what: str
    bundle_of: str | None = None  # which catalogue version's bundle to verify (field name)
    integer_bit: int = 0  # for integer columns: the bit to flip


def _cells() -> list[Cell]:
    leaf2 = tlog.stored_hash_index(0, 2)
    interior = tlog.stored_hash_index(1, 1)
    return [
        Cell("log_entries", "entry", "idx = 3", "entry bytes of leaf 3", "updated"),
        Cell("log_entries", "leaf_hash", "idx = 2", "leaf_hash column of leaf 2"),
        Cell("log_hashes", "hash", f"idx = {leaf2}", "stored leaf hash of leaf 2", "updated"),
        Cell("log_hashes", "hash", f"idx = {interior}", "interior hash over leaves 2-3",
             "public"),
        Cell("log_hashes", "hash", "idx = (SELECT max(idx) FROM log_hashes)",
             "right-edge hash (newest)"),
        Cell("log_head", "root", "id = 1", "head root"),
        Cell("log_head", "size", "id = 1", "head size", integer_bit=1),
        Cell("log_checkpoints", "root", "size = (SELECT max(size) FROM log_checkpoints)",
             "latest checkpoint root column"),
        Cell("log_checkpoints", "note", "size = (SELECT max(size) FROM log_checkpoints)",
             "latest checkpoint signed note", "public"),
        Cell("dataset_versions", "metadata_json", "leaf_index = 0", "metadata of leaf 0",
             "public"),
        Cell("dataset_versions", "metadata_sha256", "leaf_index = 0",
             "metadata_sha256 of leaf 0"),
        Cell("dataset_versions", "metadata_salt", "leaf_index = 1", "v2 salt of leaf 1",
             "government"),
        Cell("dataset_versions", "leaf_index", "leaf_index = 2", "leaf_index of leaf 2",
             integer_bit=64),
        Cell("dataset_versions", "version", "leaf_index = 2", "version number of leaf 2",
             integer_bit=64),
        Cell("dataset_versions", "receipt", "leaf_index = 0", "receipt of leaf 0", "public"),
        Cell("dataset_versions", "change", "leaf_index = 3", "change kind of leaf 3"),
        Cell("dataset_versions", "visibility", "leaf_index = 0", "visibility of leaf 0"),
        Cell("dataset_versions", "state", "leaf_index = 0", "state of leaf 0"),
        Cell("dataset_versions", "slug", "leaf_index = 0", "slug of leaf 0"),
        Cell("datasets", "slug", "id = :public", "dataset slug"),
        Cell("datasets", "title", "id = :public", "dataset title"),
        Cell("datasets", "state", "id = :public", "dataset state"),
        Cell("datasets", "visibility", "id = :public", "dataset visibility"),
        Cell("datasets", "released_state", "id = :public", "dataset released_state"),
        Cell("datasets", "current_version", "id = :public", "dataset current_version",
             integer_bit=64),
        Cell("datasets", "released_version", "id = :public", "dataset released_version",
             integer_bit=64),
        Cell("anchors", "root", "id = (SELECT max(id) FROM anchors)", "anchored root"),
        Cell("anchors", "checkpoint_note", "id = (SELECT max(id) FROM anchors)",
             "anchored checkpoint note"),
        Cell("anchors", "size", "id = (SELECT max(id) FROM anchors)", "anchored size",
             integer_bit=1),
    ]


def _flip(db, cell: Cell, params: dict[str, str]) -> tuple[object, object]:  # type: ignore[no-untyped-def]
    """Flip one bit of the cell (an ASCII neighbour for text, so text stays UTF-8); return
    (old, new) so the cell can be found and restored even when its key column changed."""
    query = f"SELECT {cell.column} FROM {cell.table} WHERE {cell.where}"
    with db.write() as session:
        value = session.execute(text(query), params).scalar_one()
        if isinstance(value, int):
            new: object = value ^ cell.integer_bit
        elif isinstance(value, str):
            raw = bytearray(value.encode("utf-8"))
            ascii_at = [i for i in range(len(raw) // 2, len(raw))
                        if raw[i] < 0x80 and raw[i] not in b'"\\\n ']
            # No ASCII left (a Chinese title): flip a UTF-8 continuation byte, still UTF-8.
            at = ascii_at[0] if ascii_at else len(raw) - 1
            raw[at] ^= 0x01
            new = raw.decode("utf-8")
        else:
            raw = bytearray(bytes(value))
            raw[len(raw) // 2] ^= 0x01
            new = bytes(raw)
        session.execute(text(f"UPDATE {cell.table} SET {cell.column} = :new "
                             f"WHERE {cell.where}"), {**params, "new": new})
    return value, new


def _restore(db, cell: Cell, snapshot: tuple[object, object]) -> None:  # type: ignore[no-untyped-def]
    with db.write() as session:
        session.execute(text(f"UPDATE {cell.table} SET {cell.column} = :old "
                             f"WHERE {cell.column} = :new"), {"old": snapshot[0],
                                                              "new": snapshot[1]})


@pytest.fixture
def served(registry) -> Iterator[str]:  # type: ignore[no-untyped-def]
    server = make_server("127.0.0.1", 0, registry.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


def _offline_detectors(registry, base: str, catalogue: Catalogue, cell: Cell  # type: ignore[no-untyped-def]
                       ) -> tuple[str, str]:
    verifier = registry.state.log.signer.verifier
    try:
        run_monitor(base + "/log/", verifier)
        monitor = "-"
    except MonitorAlarm:
        monitor = "ALARM"
    except Exception as exc:  # the server refusing to serve a tile is a detection too
        monitor = f"refused ({type(exc).__name__})"
    if cell.bundle_of is None:
        return monitor, "n/a"
    version = getattr(catalogue, cell.bundle_of)
    reader = registry.auth(registry.token("mot", "member"))
    r = registry.client.get(f"/api/v1/datasets/{version['id']}/versions/"
                            f"{version['version']}/proof", headers=reader)
    if r.status_code != 200:
        return monitor, f"bundle {r.status_code}"
    report = verify_bundle(parse_bundle(r.get_json()), verifier)
    return monitor, "ok (missed)" if report.ok else f"FAIL: {report.first_failure.name}"


def _wait_for_alarm(registry) -> tuple[float, str]:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while time.monotonic() - started < DEADLINE:
        r = registry.client.get("/readyz")
        if r.status_code == 503 and r.get_json().get("alarms"):
            alarm = r.get_json()["alarms"][0]
            return time.monotonic() - started, f"{alarm['kind']} @ {alarm['leaf_index']}"
        time.sleep(0.1)
    return float("inf"), "NOT DETECTED"


def test_every_flipped_byte_is_detected_within_60_seconds(registry, served,  # type: ignore[no-untyped-def]
                                                          database_url) -> None:
    catalogue = build_catalogue(registry)
    worker = build_anchor_worker(registry.state)
    worker.epoch_seconds = 0
    worker.run_once()
    with registry.state.db.read() as session:
        assert session.execute(text("SELECT count(*) FROM anchors")).scalar_one() >= 1
    params = {"public": catalogue.public["id"]}
    db = registry.state.db
    cells = _cells()

    offline = {}
    for cell in cells:  # phase A: the offline detectors, loops stopped
        flipped = _flip(db, cell, params)
        try:
            offline[cell] = _offline_detectors(registry, served, catalogue, cell)
        finally:
            _restore(db, cell, flipped)

    rows = []
    audit = build_self_audit(registry.state)
    checkpointer = CheckpointLoop(db.write, registry.state.log, 1.0)
    audit.start()
    checkpointer.start()
    try:
        for cell in cells:  # phase B: the running server's self-audit, timed
            flipped = _flip(db, cell, params)
            seconds, alarm = _wait_for_alarm(registry)
            _restore(db, cell, flipped)
            assert audit.run_full() == [], f"{cell.what} not restored"
            with db.write() as session:
                acknowledge_alarms(session, "tamper matrix")
            rows.append((cell, seconds, alarm))
    finally:
        audit.stop()
        checkpointer.stop()

    kind = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    lines = [f"Tamper matrix ({kind}): one byte flipped per row; self-audit tick 1 s",
             f"{'table.column':<34} {'what':<34} {'self-audit /readyz':<36} {'seconds':>7} "
             f"{'monitor':<10} verify"]
    for cell, seconds, alarm in rows:
        monitor, verify = offline[cell]
        lines.append(f"{cell.table + '.' + cell.column:<34} {cell.what:<34} {alarm:<36} "
                     f"{seconds:>7.1f} {monitor:<10} {verify}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"tamper-matrix-{kind}.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    missed = [cell.what for cell, seconds, _ in rows if seconds > DEADLINE]
    assert not missed, f"not detected within {DEADLINE} s: {missed}"
