"""Rotating the log's own signing key safely (``ndr log rotate-key``).

The order makes every failure leave a usable log and nothing half-written:

1. the old key is copied to ``<key file>.<key id>.retired`` (0600): kept, never used to sign;
2. the new key is staged in ``<key file>.new`` (0600, flushed);
3. one database transaction appends the ``ndr.key-rotation/v1`` statement (signed by the old
   key) as a ``log.key-rotation`` leaf and records it in ``log_key_rotations``; if it fails,
   the staged files are removed and the log is as it was;
4. the staged key replaces the key file (an atomic rename);
5. a checkpoint is signed with the new key, covering the rotation leaf.

A crash between 3 and 4 is finished by running the command again: the staged key is the one
the database names, so it is moved into place (a staged key the database does not name never
made it and is discarded). Meanwhile the log refuses to sign with the retired key
(`TransparencyLog.current_signer`); the running server's checkpointer re-reads the key file
by itself once it has been replaced.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from anchoring.keys import load_key_file, load_key_from_env, write_key_file
from anchoring.log_store import LogError
from anchoring.note import NoteSigner
from registry.state import RegistryState


class RotationRefused(RuntimeError):
    """The rotation cannot be done here (key from the environment, log halted...)."""


@dataclass(frozen=True)
class RotationOutcome:
    old_key: str
    new_key: str
    statement: str
    leaf_index: int | None  # None: an interrupted rotation was completed
    retired_file: Path | None
    checkpoint_size: int | None


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _finish_interrupted(state: RegistryState, key_file: Path, staged: Path
                        ) -> RotationOutcome | None:
    pending = load_key_file(staged)
    with state.db.read() as session:
        chain = state.log.key_chain(session)
        rotations = state.log.rotations(session)
    if chain[-1].vkey != pending.verifier_key or not rotations:
        staged.unlink()  # never recorded: the rotation did not happen
        return None
    old_key = state.log.signer.verifier_key
    os.replace(staged, key_file)
    _fsync_dir(key_file.parent)
    state.log.signer = pending
    return RotationOutcome(old_key, pending.verifier_key, rotations[-1].statement, None,
                           None, _checkpoint(state))


def _checkpoint(state: RegistryState) -> int | None:
    with state.db.write() as session:
        signed = state.log.sign_checkpoint_if_grown(session)
    return signed.size if signed else None


def rotate_log_key(state: RegistryState, key_file: Path) -> RotationOutcome:
    if load_key_from_env() is not None:
        raise RotationRefused("the log key comes from NDR_LOG_PRIVATE_KEY: rotate it where "
                              "that secret is kept (this command rotates a key file)")
    staged = key_file.with_name(key_file.name + ".new")
    if staged.exists():
        finished = _finish_interrupted(state, key_file, staged)
        if finished is not None:
            return finished
    old = load_key_file(key_file)
    with state.db.read() as session:
        if state.log.key_chain(session)[-1].vkey != old.verifier_key:
            raise RotationRefused(f"{key_file} does not hold the log's current key")
    new = NoteSigner.generate(old.name)
    retired = key_file.with_name(f"{key_file.name}.{old.verifier.key_id.hex()}.retired")
    made: list[Path] = []
    try:
        if not retired.exists():
            write_key_file(retired, old)
            made.append(retired)
        write_key_file(staged, new)
        made.append(staged)
        _fsync_dir(key_file.parent)
        with state.db.write() as session:
            statement, leaf_index = state.log.rotate_key(session, new)
    except (LogError, OSError) as exc:
        for path in made:
            with contextlib.suppress(OSError):
                path.unlink()
        raise RotationRefused(f"nothing changed: {exc}") from exc
    os.replace(staged, key_file)
    _fsync_dir(key_file.parent)
    state.log.signer = new
    return RotationOutcome(old.verifier_key, new.verifier_key, statement, leaf_index, retired,
                           _checkpoint(state))
