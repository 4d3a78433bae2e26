"""Assembling a running registry from settings: database, log key, search backend, loops.

Shared by `create_app()` and the CLI so both see exactly the same registry.
"""

from __future__ import annotations

from pathlib import Path

from anchoring.keys import create_key_file, load_key_file, load_key_from_env
from anchoring.log_store import TransparencyLog
from anchoring.note import NoteSigner
from registry.config import Settings
from registry.database import Database
from registry.state import RegistryState
from search import make_backend


class NotInitialised(RuntimeError):
    """The registry has no signing key yet: `ndr init` has not been run."""


def load_signer(settings: Settings) -> NoteSigner:
    signer = load_key_from_env()
    if signer is not None:
        return signer
    key_file = Path(settings.log_key_file or "")
    if not key_file.exists():
        raise NotInitialised(f"no log signing key at {key_file}; run `ndr init` first "
                             "(or set NDR_LOG_PRIVATE_KEY)")
    return load_key_file(key_file)


def ensure_signing_key(settings: Settings) -> tuple[NoteSigner, bool]:
    """Load the log key, creating it (0600) on first run. Returns (signer, created)."""
    if load_key_from_env() is None:
        key_file = Path(settings.log_key_file or "")
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            return create_key_file(key_file, settings.log_origin), True
    return load_signer(settings), False


def build_state(settings: Settings, *, database: Database | None = None) -> RegistryState:
    db = database or Database(settings.database_url)
    signer = load_signer(settings)
    log = TransparencyLog(settings.log_origin, signer)
    search = make_backend(settings.search_backend, elasticsearch_url=settings.elasticsearch_url)
    return RegistryState(settings=settings, db=db, log=log, search=search)


def start_background(state: RegistryState) -> None:
    """Checkpoint signing (about every second when the tree grew)."""
    from anchoring.checkpointer import CheckpointLoop

    loop = CheckpointLoop(state.db.write, state.log, state.settings.checkpoint_interval)
    loop.start()
    state.background.append(loop)
