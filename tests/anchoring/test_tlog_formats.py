"""Signed notes, checkpoints, receipts, tlog-proof text, key files, and RFC 8785."""

from __future__ import annotations

import base64
import os
import stat

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from anchoring.checkpoint import Checkpoint, CheckpointError, format_checkpoint, open_checkpoint
from anchoring.jcs import CanonicalizationError, canonicalize
from anchoring.keys import KeyFileError, create_key_file, load_key_file, load_key_from_env
from anchoring.note import NoteError, NoteSigner, NoteVerifier, open_note
from anchoring.tlog_proof import TlogProof, encode_tlog_proof, parse_tlog_proof

# Published test vector of golang.org/x/mod/sumdb/note (note_test.go).
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = ("If you think cryptography is the answer to your problem,\n"
           "then you don't know what your problem is.\n")
GO_NOTE = GO_TEXT + ("\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1"
                     "FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")


def test_notes_match_go_byte_for_byte() -> None:
    signer = NoteSigner.from_private_key(GO_SKEY)
    assert signer.verifier_key == GO_VKEY
    assert signer.encode_private_key() == GO_SKEY
    assert signer.sign(GO_TEXT) == GO_NOTE
    assert open_note(GO_NOTE, [NoteVerifier.from_vkey(GO_VKEY)]).text == GO_TEXT


def test_mangled_verifier_keys_are_refused() -> None:
    for i in range(len(GO_VKEY)):
        mangled = GO_VKEY[:i] + chr(ord(GO_VKEY[i]) + 1) + GO_VKEY[i + 1:]
        with pytest.raises(NoteError):
            NoteVerifier.from_vkey(mangled)


@settings(max_examples=200, deadline=None)
@given(position=st.integers(0, len(GO_NOTE.encode()) - 1), bit=st.integers(0, 7))
def test_any_flipped_bit_of_a_signed_note_is_detected(position: int, bit: int) -> None:
    raw = bytearray(GO_NOTE.encode())
    raw[position] ^= 1 << bit
    verifier = NoteVerifier.from_vkey(GO_VKEY)
    with pytest.raises((NoteError, UnicodeDecodeError)):
        opened = open_note(raw.decode(), [verifier])
        # A flip inside the key-name or key-id makes the signature "unknown": still refused.
        assert opened.text == GO_TEXT


def test_unknown_signatures_are_kept_and_forged_ones_refused() -> None:
    log = NoteSigner.generate("log.example")
    witness = NoteSigner.generate("witness.example")
    text = "log.example\n5\n" + base64.b64encode(bytes(32)).decode() + "\n"
    note = log.sign(text) + witness.signature_line(text)
    opened = open_note(note, [log.verifier])
    assert [s.name for s in opened.verified] == ["log.example"]
    assert [s.name for s in opened.unverified] == ["witness.example"]
    forged = log.sign(text).replace(text, text.replace("\n5\n", "\n6\n"))
    with pytest.raises(NoteError):
        open_note(forged, [log.verifier])
    with pytest.raises(NoteError):
        open_note(witness.sign(text), [log.verifier])


def test_checkpoints_round_trip_with_extensions_and_check_origin() -> None:
    signer = NoteSigner.generate("registry.example/log")
    cp = Checkpoint("registry.example/log", 1234, bytes(range(32)), ("ext one",))
    note = signer.sign(format_checkpoint(cp))
    assert open_checkpoint(note, signer.verifier) == cp
    with pytest.raises(CheckpointError):
        open_checkpoint(note, signer.verifier, origin="other.example/log")
    for body in ["o\n01\nAAAA\n", "o\n1\n" + base64.b64encode(bytes(31)).decode() + "\n",
                 "o\n-1\n" + base64.b64encode(bytes(32)).decode() + "\n"]:
        with pytest.raises((CheckpointError, NoteError)):
            open_checkpoint(NoteSigner.generate("o").sign(body),
                            NoteVerifier("o", NoteSigner.generate("o").public_key))


def test_tlog_proof_round_trips_the_c2sp_layout() -> None:
    proof = TlogProof(index=73894, inclusion_path=[bytes([i]) * 32 for i in range(3)],
                      checkpoint=GO_NOTE, extra=b'{"v":1}')
    text = encode_tlog_proof(proof)
    lines = text.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    assert lines[1] == "extra " + base64.b64encode(b'{"v":1}').decode()
    assert lines[2] == "index 73894" and lines[6] == ""
    assert parse_tlog_proof(text) == proof
    no_extra = TlogProof(index=0, inclusion_path=[], checkpoint=GO_NOTE)
    assert parse_tlog_proof(encode_tlog_proof(no_extra)) == no_extra


def test_key_files_are_private(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "log.key"
    signer = create_key_file(path, "registry.example/log")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_key_file(path).verifier_key == signer.verifier_key
    with pytest.raises(FileExistsError):
        create_key_file(path, "again")
    os.chmod(path, 0o640)
    with pytest.raises(KeyFileError):
        load_key_file(path)
    monkeypatch.setenv("NDR_TEST_LOG_KEY", signer.encode_private_key())
    assert load_key_from_env("NDR_TEST_LOG_KEY").verifier_key == signer.verifier_key  # type: ignore[union-attr]
    assert "PRIVATE" not in repr(signer)


json_values = st.recursive(
    st.none() | st.booleans() | st.text()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=25,
)


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_jcs_matches_the_rfc8785_package(value) -> None:  # type: ignore[no-untyped-def]
    try:
        expected = rfc8785.dumps(value)
    except Exception:  # the reference refuses it (e.g. a lone surrogate): so must we
        with pytest.raises(CanonicalizationError):
            canonicalize(value)
        return
    assert canonicalize(value) == expected


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_jcs_numbers_match_the_rfc8785_package(x: float) -> None:
    assert canonicalize(x) == rfc8785.dumps(x)


def test_jcs_known_vectors_and_refusals() -> None:
    # RFC 8785 §3.2.2.3 examples of number serialisation.
    for value, text in [(1e21, b"1e+21"), (1e-7, b"1e-7"),
                        (333333333.33333329, b"333333333.3333333"), (-0.0, b"0"),
                        (4.50, b"4.5"), (2e-3, b"0.002"), (1e23, b"1e+23")]:
        assert canonicalize(value) == text
    for bad in [float("nan"), 2**53, {1: 2}, "\ud800"]:
        with pytest.raises(CanonicalizationError):
            canonicalize(bad)


def test_auditor_side_imports_nothing_of_the_server() -> None:
    import subprocess
    import sys

    code = ("import sys, anchoring.auditor.cli, anchoring.auditor.monitor\n"
            "bad = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'flask', 'sqlalchemy', 'registry', 'werkzeug', 'rfc8785'})\n"
            "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
