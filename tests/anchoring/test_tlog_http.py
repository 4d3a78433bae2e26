"""The /log/ tiles and /api/v1/log/ proofs over a real HTTP server, and the auditor tools."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import update
from tlog_helpers import ORIGIN, LogEnv, make_log_env

from anchoring import tlog
from anchoring.auditor.cli import main as auditor_main
from anchoring.bundle import build_bundle
from anchoring.jcs import canonicalize
from anchoring.log_store import LogEntry


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def _entries(start: int, count: int) -> list[bytes]:
    """Well-formed entries: the monitor checks each one's format, not only its hash."""
    return [canonicalize({"v": 1, "type": "dataset.published", "dataset": f"d{i}",
                          "version": 1, "organization": "org", "metadata_sha256": "0" * 64,
                          "time": "2025-01-01T00:00:00Z"})
            for i in range(start, start + count)]


def test_tiles_checkpoint_and_key(log_env: LogEnv, serve) -> None:  # type: ignore[no-untyped-def]
    served = serve(log_env)
    assert _get(served.url + "checkpoint")[0] == 404
    entries = _entries(0, 300)
    log_env.append(entries)
    log_env.sign()
    log_env.append(_entries(300, 5))  # not yet checkpointed: must not be served
    status, headers, body = _get(served.url + "checkpoint")
    assert status == 200 and headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "max-age=2" in headers["Cache-Control"]
    assert body.decode().startswith(f"{ORIGIN}\n300\n")
    status, _, key = _get(served.url + "key")
    assert key.decode().strip() == log_env.signer.verifier_key

    status, headers, tile = _get(served.url + "tile/0/000")
    assert status == 200 and headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert headers["Content-Type"] == "application/octet-stream"
    assert tile == b"".join(hashlib.sha256(b"\x00" + e).digest() for e in entries[:256])
    status, headers, partial = _get(served.url + "tile/0/001.p/44")
    assert status == 200 and "immutable" not in headers["Cache-Control"]
    assert partial == b"".join(tlog.hash_leaf(e) for e in entries[256:300])
    status, _, bundle = _get(served.url + "tile/entries/001.p/44")
    assert tlog.split_entry_bundle(bundle) == entries[256:300]
    status, _, level1 = _get(served.url + "tile/1/000.p/1")
    assert level1 == tile_root(tile)
    for beyond in ("tile/0/001", "tile/0/001.p/45", "tile/entries/001", "tile/1/000",
                   "tile/0/002.p/1", "tile/0/1", "tile/entries/x000/001"):
        assert _get(served.url + beyond)[0] == 404, beyond


def tile_root(tile: bytes) -> bytes:
    level = [tile[i:i + 32] for i in range(0, len(tile), 32)]
    while len(level) > 1:
        level = [tlog.hash_children(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def test_json_proofs_and_problem_details(log_env: LogEnv, serve) -> None:  # type: ignore[no-untyped-def]
    served = serve(log_env)
    entries = _entries(0, 40)
    log_env.append(entries)
    log_env.sign()
    status, headers, body = _get(served.base + "/api/v1/log/proof/inclusion?index=7&size=40")
    assert status == 200
    proof = json.loads(body)
    tlog.check_record([base64.b64decode(h) for h in proof["inclusion_path"]], 40,
                      base64.b64decode(proof["root_hash"]), 7, tlog.hash_leaf(entries[7]))
    status, _, body = _get(served.base + "/api/v1/log/proof/consistency?old=13&new=40")
    c = json.loads(body)
    tlog.check_tree([base64.b64decode(h) for h in c["consistency_path"]], 40,
                    base64.b64decode(c["new_root"]), 13, base64.b64decode(c["old_root"]))
    for query, name in [("inclusion?index=40&size=40", "index"), ("inclusion?size=3", "index"),
                        ("inclusion?index=1&size=41", "size"), ("inclusion?index=-1", "index"),
                        ("inclusion?index=01&size=4", "index"), ("consistency?old=0", "old"),
                        ("consistency?old=5&new=4", "old"), ("consistency?old=1&new=x", "new")]:
        status, headers, body = _get(served.base + "/api/v1/log/proof/" + query)
        assert status == 400, query
        assert headers["Content-Type"] == "application/problem+json"
        problem = json.loads(body)
        assert problem["status"] == 400 and problem["errors"][0]["name"] == name, query


def _bundle_for(env: LogEnv, index: int, metadata: dict) -> dict:  # type: ignore[type-arg]
    with env.db.read() as session:
        entry = env.log.entry(session, index)
        cp = env.log.checkpoint_at_least(session, index + 1)
        assert cp is not None
        path = env.log.inclusion_proof(session, index, cp.size)
    receipt = env.log.sign_receipt(index, tlog.hash_leaf(entry), cp.created_at)
    return build_bundle(origin=ORIGIN, dataset="ds-1", version=2, entry=entry,
                        metadata=metadata, index=index, tree_size=cp.size,
                        inclusion_path=path, checkpoint=cp.note, receipt=receipt).to_json()


def _publish(env: LogEnv, metadata: dict) -> int:  # type: ignore[type-arg]
    digest = hashlib.sha256(canonicalize(metadata)).hexdigest()
    entry = canonicalize({"v": 1, "type": "dataset.updated", "dataset": "ds-1", "version": 2,
                          "organization": "org-9", "metadata_sha256": digest,
                          "time": "2025-01-01T00:00:00Z"})
    (index,) = env.append([entry])
    return index


METADATA = {"title": {"zh": "人口统计", "en": "Population"}, "size": 1.5e-7, "tags": ["a"]}


@pytest.fixture
def published(sqlite_log_env: LogEnv, tmp_path: Path) -> tuple[LogEnv, Path, dict]:  # type: ignore[type-arg]
    sqlite_log_env.append(_entries(0, 9))
    index = _publish(sqlite_log_env, METADATA)
    sqlite_log_env.append(_entries(10, 3))
    sqlite_log_env.sign()
    bundle = _bundle_for(sqlite_log_env, index, METADATA)
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(bundle, ensure_ascii=False))
    return sqlite_log_env, path, bundle


def test_verify_accepts_a_good_bundle_and_tlog_proof(published, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    env, path, bundle = published
    key = env.signer.verifier_key
    assert auditor_main(["verify", str(path), "--key", key]) == 0
    out = capsys.readouterr().out
    assert "ok    inclusion proof" in out and "ok    receipt" in out
    from anchoring.bundle import parse_bundle
    from anchoring.tlog_proof import encode_tlog_proof

    proof_file = tmp_path / "proof.tlog-proof"
    proof_file.write_text(encode_tlog_proof(parse_bundle(bundle).to_tlog_proof()))
    assert auditor_main(["verify", str(proof_file), "--key", key]) == 0


@pytest.mark.parametrize(("mutate", "failed_step"), [
    (lambda b: b["metadata"].update(title="x"), "metadata hash"),
    (lambda b: b.update(entry=b["entry"].replace('"org-9"', '"org-8"')), "leaf hash"),
    (lambda b: b.update(index=b["index"] + 1), "inclusion proof"),
    (lambda b: b["inclusion_path"].__setitem__(0, base64.b64encode(bytes(32)).decode()),
     "inclusion proof"),
    (lambda b: b.update(checkpoint=b["checkpoint"].replace("\n13\n", "\n12\n")),
     "checkpoint signature"),
    (lambda b: b.update(receipt=b["receipt"].replace("\n9\n", "\n8\n")), "receipt"),
])
def test_verify_names_the_first_failing_check(published, tmp_path, capsys, mutate, failed_step  # type: ignore[no-untyped-def]
                                              ) -> None:
    env, _, bundle = published
    bad = json.loads(json.dumps(bundle))
    mutate(bad)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    assert auditor_main(["verify", str(path), "--key", env.signer.verifier_key]) == 1
    assert f"FAILED at: {failed_step}" in capsys.readouterr().err


def test_verify_rejects_another_key(published, capsys) -> None:  # type: ignore[no-untyped-def]
    _, path, _ = published
    other = make_log_env("sqlite://").signer.verifier_key
    assert auditor_main(["verify", str(path), "--key", other]) == 1
    assert "FAILED at: checkpoint signature" in capsys.readouterr().err


def test_monitor_replays_incrementally_and_detects_tampering(log_env: LogEnv, serve, tmp_path,  # type: ignore[no-untyped-def]
                                                            capsys) -> None:
    served = serve(log_env)
    state = tmp_path / "monitor.json"
    key = log_env.signer.verifier_key
    log_env.append(_entries(0, 700))
    log_env.sign()
    assert auditor_main(["monitor", served.url, "--key", key, "--state", str(state)]) == 0
    assert "verified 700 new entries" in capsys.readouterr().out
    log_env.append(_entries(700, 30))
    log_env.sign()
    assert auditor_main(["monitor", served.url, "--key", key, "--state", str(state)]) == 0
    assert "verified 30 new entries; size 700 -> 730" in capsys.readouterr().out
    # The operator edits a stored entry in place: a fresh full replay must catch it.
    with log_env.db.write() as session:
        session.execute(update(LogEntry).where(LogEntry.idx == 500)
                        .values(entry=b'{"v":1,"n":500,"dataset":"evil"}'))
    assert auditor_main(["monitor", served.url, "--key", key]) == 1
    err = capsys.readouterr().err
    assert "tampering" in err and "entry 500" in err


def test_monitor_detects_a_split_view(tmp_path, serve, capsys, database_url) -> None:  # type: ignore[no-untyped-def]
    # Two databases, one key: the log shows one history to the monitor, then another.
    honest = make_log_env(database_url)
    fork = make_log_env(f"sqlite:///{tmp_path / 'fork.db'}", honest.signer)
    common = _entries(0, 300)
    honest.append(common)
    fork.append(common)
    honest.append(_entries(300, 20))
    fork.append(_entries(1000, 20))
    fork.append(_entries(2000, 5))
    honest.sign()
    fork.sign()
    state = tmp_path / "state.json"
    key = honest.signer.verifier_key
    assert auditor_main(["monitor", serve(honest).url, "--key", key, "--state", str(state)]) == 0
    capsys.readouterr()
    assert auditor_main(["monitor", serve(fork).url, "--key", key, "--state", str(state)]) == 1
    err = capsys.readouterr().err
    assert "split view" in err and "--- earlier checkpoint ---" in err
    assert json.loads(state.read_text())["size"] == 320  # the state keeps the verified view
    honest.db.dispose()
    fork.db.dispose()
