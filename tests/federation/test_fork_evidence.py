"""Every fork and rollback is kept as evidence, at any size - powers of two included.

From a power-of-two size the member's consistency proof carries no old root (RFC 9162
§2.1.4.2), so the hub reads the member's own root at that size from its tiles and keeps it only
if the member's proof ties it to the member's signed checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from flask import Flask, Response
from sqlalchemy import func, select
from werkzeug.serving import make_server

from anchoring import tlog
from anchoring.auditor.cosignature import CosignatureVerifier
from anchoring.auditor.evidence import INCONSISTENT, SAME_SIZE, verify_evidence
from anchoring.note import NoteSigner
from anchoring.witness import format_add_checkpoint
from registry.federation.models import FederationMember, WitnessEvidence
from registry.federation.trust import add_member
from tests.federation.memberlog import MemberLog

MEMBER = "province-f.example.gov.cn/log"


class TileServer:
    """Serves a MemberLog's hash tiles over loopback HTTP; `log` can be swapped (a fork) and
    `lie` makes it answer a made-up hash."""

    def __init__(self, log: MemberLog) -> None:
        self.log = log
        self.lie = False
        app = Flask("member-tiles")

        @app.get("/log/tile/<path:path>")
        def tile(path: str) -> Response:
            wanted = tlog.parse_tile_path("tile/" + path)
            width = wanted.width
            level = tlog.TILE_HEIGHT * wanted.level
            first = wanted.n * tlog.TILE_WIDTH
            if wanted.records_needed() > self.log.size:
                return Response("beyond the tree", status=404)
            data = b"".join(self.log.hashes[tlog.stored_hash_index(level, first + i)]
                            for i in range(width))
            if self.lie:
                data = bytes(32) + data[32:]
            return Response(data, content_type="application/octet-stream")

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(5)


@pytest.fixture
def tiles() -> Iterator[TileServer]:
    server = TileServer(MemberLog(NoteSigner.generate(MEMBER)))
    yield server
    server.stop()


def _start(registry, tiles: TileServer, size: int) -> MemberLog:  # type: ignore[no-untyped-def]
    member = MemberLog(tiles.log.signer).extend(size)
    tiles.log = member
    with registry.state.db.write() as session:
        add_member(session, MEMBER, member.signer.verifier_key, url=tiles.url)
    assert _post(registry, 0, [], member.note()).status_code == 200
    return member


def _post(registry, old: int, proof: list[bytes], note: str):  # type: ignore[no-untyped-def]
    return registry.client.post("/witness/add-checkpoint",
                                data=format_add_checkpoint(old, proof, note),
                                content_type="text/plain")


def _witness_key(registry) -> CosignatureVerifier:  # type: ignore[no-untyped-def]
    return CosignatureVerifier.from_vkey(registry.client.get("/witness/key").text)


def _assert_kept_served_alarmed_checkable(registry, member: MemberLog, kind: str,  # type: ignore[no-untyped-def]
                                          tmp_path) -> dict:
    listed = registry.client.get("/api/v1/federation/evidence").json["evidence"]
    assert [e["kind"] for e in listed] == [kind]
    raw = registry.client.get(f"/api/v1/federation/evidence/{listed[0]['id']}").text
    steps = verify_evidence(json.loads(raw), member.signer.verifier, _witness_key(registry))
    assert steps and all(s.ok for s in steps), steps
    assert f'ndr_federation_alarm{{origin="{MEMBER}"}} 1' in registry.client.get("/metrics").text
    assert MEMBER in registry.client.get("/readyz").json["federation_alarms"]
    # Cosigning stopped, even for the honest history.
    assert _post(registry, 0, [], member.note()).status_code == 403
    path = tmp_path / "evidence.json"
    path.write_text(raw)
    checked = subprocess.run([sys.executable, "-m", "anchoring.auditor", "verify-evidence",
                              str(path), "--key", member.signer.verifier_key,
                              "--witness-key", _witness_key(registry).vkey],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "fork proven" in checked.stdout
    return json.loads(raw)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8, 16, 255, 256, 257, 512])
def test_a_fork_after_any_cosigned_size_is_kept_as_evidence(registry, tiles, size,  # type: ignore[no-untyped-def]
                                                            tmp_path) -> None:
    member = _start(registry, tiles, size)
    twin = member.fork(size - 1).extend(4, tag="twin")  # another tree of size `size`
    tiles.log = twin  # the forked member serves its forked tiles
    response = _post(registry, size, twin.proof(size), twin.note())
    assert response.status_code == 422, response.text
    evidence = _assert_kept_served_alarmed_checkable(registry, member, INCONSISTENT, tmp_path)
    assert evidence["conflicting_old_root"] is not None


@pytest.mark.parametrize("size", [1, 2, 4, 8, 16, 7])
def test_two_roots_of_one_size_are_kept_as_evidence(registry, tiles, size, tmp_path) -> None:  # type: ignore[no-untyped-def]
    member = _start(registry, tiles, size)
    twin = member.fork(size - 1).extend(1, tag="twin")
    response = _post(registry, size, [], twin.note())
    assert response.status_code == 409, response.text
    _assert_kept_served_alarmed_checkable(registry, member, SAME_SIZE, tmp_path)


@pytest.mark.parametrize("earlier", [1, 2, 4, 6])
def test_a_rollback_to_another_cosigned_size_is_kept_as_evidence(registry, tiles, earlier,  # type: ignore[no-untyped-def]
                                                                 tmp_path) -> None:
    member = _start(registry, tiles, earlier)
    member.extend(9)
    assert _post(registry, earlier, member.proof(earlier), member.note()).status_code == 200
    rolled_back = member.fork(earlier - 1).extend(1, tag="rolled-back")
    # The rolled-back member's first submission (a restarted submitter knows no size).
    response = _post(registry, 0, [], rolled_back.note())
    assert response.status_code == 409, response.text
    evidence = _assert_kept_served_alarmed_checkable(registry, member, SAME_SIZE, tmp_path)
    assert f"\n{earlier}\n" in evidence["cosigned"]


def test_an_old_checkpoint_replayed_is_stale_not_a_fork(registry, tiles) -> None:  # type: ignore[no-untyped-def]
    member = _start(registry, tiles, 4)
    member.extend(4)
    assert _post(registry, 4, member.proof(4), member.note()).status_code == 200
    assert _post(registry, 0, [], member.note(4)).status_code == 409  # same root: stale
    assert _post(registry, 8, [], member.note(4)).status_code == 400
    _assert_no_evidence(registry)


def _assert_no_evidence(registry) -> None:  # type: ignore[no-untyped-def]
    with registry.state.db.read() as session:
        assert session.scalar(select(func.count()).select_from(WitnessEvidence)) == 0
        assert session.get(FederationMember, MEMBER).alarm is None


@pytest.mark.parametrize("size", [1, 4, 256])
def test_a_bad_proof_from_a_power_of_two_proves_nothing(registry, tiles, size) -> None:  # type: ignore[no-untyped-def]
    """An honest member with a broken proof, or lying tiles, is refused without evidence: the
    tiles' root is believed only when the member's own proof ties it to its signed root."""
    member = _start(registry, tiles, size)
    member.extend(5)
    garbage = [bytes([7]) * 32] * len(member.proof(size))
    assert _post(registry, size, garbage, member.note()).status_code == 422
    _assert_no_evidence(registry)
    twin = member.fork(size - 1).extend(6, tag="twin")
    tiles.log, tiles.lie = twin, True  # forked, but its tiles do not match its proof
    assert _post(registry, size, twin.proof(size), twin.note()).status_code == 422
    _assert_no_evidence(registry)
    tiles.lie = False
    assert _post(registry, size, member.proof(size), member.note()).status_code == 200


def test_an_unreachable_member_cannot_hide_behind_its_tiles(registry, tiles) -> None:  # type: ignore[no-untyped-def]
    """A forked member whose tiles are gone is refused (422) without evidence, and stays
    refused: the hub never cosigns the forked tree."""
    member = _start(registry, tiles, 8)
    twin = member.fork(7).extend(3, tag="twin")
    tiles.stop()
    assert _post(registry, 8, twin.proof(8), twin.note()).status_code == 422
    assert _post(registry, 8, twin.proof(8), twin.note()).status_code == 422
    _assert_no_evidence(registry)


def test_a_fork_across_a_key_rotation_is_checkable_from_the_old_key(registry, tiles,  # type: ignore[no-untyped-def]
                                                                    tmp_path) -> None:
    from anchoring.auditor.key_rotation import sign_rotation

    member = _start(registry, tiles, 5)
    old = member.signer
    new = NoteSigner.generate(MEMBER)
    assert registry.client.post("/witness/key-rotation", data=sign_rotation(
        old, new.verifier_key), content_type="text/plain").status_code == 200
    twin = member.fork(3).extend(6, tag="twin")
    twin.signer = new
    assert _post(registry, 5, twin.proof(5), twin.note()).status_code == 422
    (item,) = registry.client.get("/api/v1/federation/evidence").json["evidence"]
    raw = registry.client.get(f"/api/v1/federation/evidence/{item['id']}").text
    steps = verify_evidence(json.loads(raw), old.verifier, _witness_key(registry))
    assert all(s.ok for s in steps) and "key rotations" in [s.name for s in steps], steps
    # Trust only runs forward: from the new key alone, the old key's note proves nothing.
    from_new = verify_evidence(json.loads(raw), new.verifier)
    assert [s.name for s in from_new if not s.ok] == ["cosigned checkpoint signature"]
    path = tmp_path / "evidence.json"
    path.write_text(raw)
    checked = subprocess.run([sys.executable, "-m", "anchoring.auditor", "verify-evidence",
                              str(path), "--key", old.verifier_key],
                             capture_output=True, text=True)
    assert checked.returncode == 0 and "fork proven" in checked.stdout, checked.stdout
