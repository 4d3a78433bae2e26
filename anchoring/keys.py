"""The log's signing key on disk or in the environment.

The key file holds Go's ``PRIVATE+KEY+...`` encoding. It is created 0600 atomically (never
world-readable, not even for an instant) and refused if group or others can read it, as ssh
does, because a leaked key lets anyone forge checkpoints.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from anchoring.note import NoteSigner

DEFAULT_ENV_VAR = "NDR_LOG_PRIVATE_KEY"


class KeyFileError(RuntimeError):
    """The key file is missing, malformed, or too widely readable."""


def create_key_file(path: str | os.PathLike[str], name: str) -> NoteSigner:
    """Generate a key named `name` (the log origin) into a new file with mode 0600."""
    signer = NoteSigner.generate(name)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(signer.encode_private_key() + "\n")
    return signer


def write_key_file(path: str | os.PathLike[str], signer: NoteSigner) -> None:
    """Write an existing key to a new file, 0600 from the first byte, flushed to disk (a key
    rotation keeps the old key this way and stages the new one before swapping it in)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(signer.encode_private_key() + "\n")
        out.flush()
        os.fsync(out.fileno())


def load_key_file(path: str | os.PathLike[str]) -> NoteSigner:
    mode = os.stat(path).st_mode
    if stat.S_IMODE(mode) & 0o077:
        raise KeyFileError(f"{path} is readable by group or others; run chmod 600 {path}")
    return NoteSigner.from_private_key(Path(path).read_text())


def load_key_from_env(var: str = DEFAULT_ENV_VAR) -> NoteSigner | None:
    """The key from an environment variable (for containers with secret injection), if set."""
    value = os.environ.get(var)
    if not value:
        return None
    return NoteSigner.from_private_key(value)
