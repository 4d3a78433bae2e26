"""Secret files: created 0600 without a race, refused when group or others may read them.

Several gunicorn workers start at once and each may find a key missing (F19). With a plain
``O_EXCL`` create, the losers got ``FileExistsError`` (or read a half-written file) and the
worker failed to boot. Here the winner writes a complete temporary file (0600 from the first
byte) and ``link()``s it into place, which is atomic and fails if the name exists; a loser
then reads the winner's file, which is complete because it was linked only once written.

Standard library only: the auditor side and the anchoring package use it without the server.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path


class SecretFileError(RuntimeError):
    """A secret file is readable by group or others (or otherwise unusable)."""


def require_private(path: str | os.PathLike[str]) -> None:
    """Refuse a secret file that group or others can read or write, as ssh does."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        raise SecretFileError(
            f"{path} is readable by group or others (mode {mode:04o}); anyone on this machine "
            f"could copy the secret. Run: chmod 600 {path}")


def create_or_load(path: str | os.PathLike[str], make: Callable[[], bytes]) -> tuple[bytes, bool]:
    """The file's content, creating it with `make()` (mode 0600) when it does not exist.

    Returns (content, created). Safe when many processes call it at once on a fresh directory:
    exactly one creates the file, every caller gets the same content.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        require_private(target)
        return target.read_bytes(), False
    content = make()
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(temporary, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, target)
        except FileExistsError:
            require_private(target)
            return target.read_bytes(), False  # another process won; its file is complete
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_directory(target.parent)
    return content, True


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
