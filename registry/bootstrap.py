"""Assembling a running registry from settings: database, log key, search backend, loops.

Shared by `create_app()` and the CLI so both see exactly the same registry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    search = make_backend(settings.search_backend, elasticsearch_url=settings.elasticsearch_url,
                          index_path=settings.search_index_dir)
    if hasattr(search, "attach"):
        from registry.datasets.search_sync import documents

        # this process may apply the change feed (under its lease) and fill a new index
        search.attach(db.write, documents)
    return RegistryState(settings=settings, db=db, log=log, search=search)


def build_anchor_worker(state: RegistryState):  # type: ignore[no-untyped-def]
    """The anchor worker for the configured backend (local journal, EVM or ChainMaker)."""
    from anchoring.anchor_backends import AnchorConfig, make_anchor_backend
    from anchoring.anchor_worker import AnchorWorker

    config = AnchorConfig.from_env()
    backend = make_anchor_backend(config, write_session_factory=state.db.write,
                                  var_dir=state.settings.var_dir)
    return AnchorWorker(state.db.write, state.log.latest_checkpoint, backend,
                        epoch_seconds=config.epoch_seconds, confirmations=config.confirmations)


class BackgroundThread:
    """A daemon loop beside the web workers, stopped by an event (anchor worker, search
    outbox). Loops that need a single runner across processes hold a database lease."""

    def __init__(self, name: str, target: Callable[..., None], *args: Any,
                 **kwargs: Any) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=target, args=(*args, self._stop),
                                        kwargs=kwargs, name=name, daemon=True)
        self.last_error = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)


def _outbox_loop(state: RegistryState, stop: threading.Event) -> None:
    from search.elasticsearch_backend import run_outbox_worker

    run_outbox_worker(state.db.write, state.search.client,
                      index_prefix=state.search.index_prefix, stop=stop)


def _feed_indexer_loop(state: RegistryState, stop: threading.Event) -> None:
    """Apply the search change feed to this host's Tantivy index; every process runs the loop,
    the feed lease lets exactly one of them write."""
    state.search.run(stop)


def warm_up_search(state: RegistryState) -> None:
    """Load jieba's dictionary before the first user asks (a second or more)."""
    from search.analysis import warm_up

    warm_up()


def start_background(state: RegistryState) -> None:
    """Checkpoint signing (about every second when the tree grew) and, unless the operator runs
    `ndr anchor run` separately (NDR_ANCHOR_INPROCESS=0), the anchor worker."""
    from anchoring.checkpointer import CheckpointLoop

    threading.Thread(target=warm_up_search, args=(state,), name="ndr-search-warm-up",
                     daemon=True).start()
    loop = CheckpointLoop(state.db.write, state.log, state.settings.checkpoint_interval)
    loop.start()
    state.background.append(loop)
    if state.search.name == "elasticsearch":
        outbox = BackgroundThread("ndr-search-outbox", _outbox_loop, state)
        outbox.start()
        state.background.append(outbox)
    if state.search.name == "tantivy":
        indexer = BackgroundThread("ndr-search-indexer", _feed_indexer_loop, state)
        indexer.start()
        state.background.append(indexer)
    if state.settings.anchor_in_process:
        worker = build_anchor_worker(state)
        anchor = BackgroundThread("ndr-anchor-worker", worker.run_forever)
        anchor.start()
        state.background.append(anchor)
