"""An implementation we did not write accepts the hub's cosignatures: a Go program using
golang.org/x/mod/sumdb/note and github.com/transparency-dev/formats/note (from the Go module
proxy) verifies a member checkpoint cosigned by the hub, and rejects a flipped byte."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from anchoring.note import NoteSigner
from anchoring.witness import format_add_checkpoint
from registry.federation.trust import add_member
from tests.federation.memberlog import MemberLog

SOURCE = Path(__file__).parent / "go-verifier"
MEMBER = "province-b.example.gov.cn/log"


def _go() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists()
                                else None)
    if go is None:
        if os.environ.get("CI"):
            pytest.fail("Go is required under CI for the independent verifier")
        pytest.skip("go is not installed")
    return go


@pytest.fixture(scope="module")
def go_verifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    binary = tmp_path_factory.mktemp("go") / "go-verifier"
    built = subprocess.run([_go(), "build", "-o", str(binary), "."], cwd=SOURCE,
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    return binary


def _flip_signature_byte(line: str, position: int) -> str:
    dash, name, encoded = line.rstrip("\n").split(" ")
    raw = bytearray(base64.b64decode(encoded))
    raw[position] ^= 0x01
    return f"{dash} {name} {base64.b64encode(bytes(raw)).decode()}\n"


def test_go_accepts_the_hubs_cosignature_and_rejects_a_flipped_byte(
        registry, go_verifier: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    member = MemberLog(NoteSigner.generate(MEMBER)).extend(7)
    with registry.state.db.write() as session:
        add_member(session, MEMBER, member.signer.verifier_key)
    response = registry.client.post("/witness/add-checkpoint",
                                    data=format_add_checkpoint(0, [], member.note()),
                                    content_type="text/plain")
    assert response.status_code == 200
    cosignature = response.text
    witness_key = registry.client.get("/witness/key").text.strip()

    def run(note: str) -> subprocess.CompletedProcess[str]:
        path = tmp_path / "note.txt"
        path.write_text(note)
        return subprocess.run([str(go_verifier), str(path), member.signer.verifier_key,
                               witness_key], capture_output=True, text=True, timeout=60)

    good = run(member.note() + cosignature)
    assert good.returncode == 0, good.stderr
    assert f"verified {MEMBER}" in good.stdout and "cosigned by" in good.stdout
    # A flipped byte in the timestamp, in the signature, or in the checkpoint body.
    for position in (4 + 7, 4 + 8 + 10, 4 + 8 + 63):
        bad = run(member.note() + _flip_signature_byte(cosignature, position))
        assert bad.returncode == 1, (position, bad.stdout)
    body, signatures = (member.note() + cosignature).split("\n\n", 1)
    tampered = body.replace("\n7\n", "\n8\n") + "\n\n" + signatures
    assert run(tampered).returncode == 1
    # Without the cosignature the Go side refuses too (it demands both).
    assert run(member.note()).returncode == 1
