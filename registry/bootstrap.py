"""Assembling a running registry from settings: database, log key, search backend, loops.

Shared by `create_app()` and the CLI so both see exactly the same registry.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from anchoring.keys import create_key_file, load_key_file, load_key_from_env
from anchoring.log_store import TransparencyLog
from anchoring.note import NoteSigner
from registry.config import Settings
from registry.database import Database
from registry.datasets.sequencer import PublishSequencer, sqlite_lock_file
from registry.state import RegistryState
from search import make_backend

log = logging.getLogger(__name__)


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
    if settings.search_snapshot and hasattr(search, "attach_session_factory"):
        # The columnar snapshot (fast counts and facets) reads several tables: one snapshot.
        search.attach_session_factory(lambda: consistent_read(db))
    state = RegistryState(settings=settings, db=db, log=log, search=search)
    if settings.publish_batch:
        state.sequencer = PublishSequencer(
            db, state.services, max_batch=settings.publish_batch_size,
            linger=settings.publish_linger_ms / 1000, lock_file=sqlite_lock_file(db))
    return state


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


@contextmanager
def consistent_read(db: Database) -> Iterator[Session]:
    """A read session whose statements all see one snapshot of the database.

    PostgreSQL's default READ COMMITTED takes a new snapshot per statement, so a reader of
    several tables (the columnar search snapshot: the high-water mark, the documents, then
    the facets) sees rows committed between its statements and disagrees with itself; under
    write load that crashed the warm-up thread (F18). REPEATABLE READ gives the whole
    transaction one snapshot, and a read-only one never conflicts. A SQLite read transaction
    in WAL mode already reads one snapshot.
    """
    if db.is_sqlite:
        with db.read() as session:
            yield session
        return
    engine = db.engine.execution_options(isolation_level="REPEATABLE READ",
                                         postgresql_readonly=True)
    with Session(bind=engine, expire_on_commit=False) as session:
        yield session


def warm_up_search(state: RegistryState) -> None:
    """Load jieba's dictionary and build the columnar search snapshot before the first user
    asks (each costs a second or more on a large catalogue). A failure only costs speed
    (searches count with SQL until a later rebuild), so it is logged, not raised."""
    from search.analysis import warm_up

    try:
        warm_up()
        columnar = getattr(state.search, "columnar", None)
        if columnar is not None and state.settings.search_snapshot:
            with consistent_read(state.db) as session:
                columnar.rebuild(session)
    except Exception:
        log.exception("search warm-up failed; counting with SQL until the next rebuild")


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
    if state.settings.anchor_in_process:
        worker = build_anchor_worker(state)
        anchor = BackgroundThread("ndr-anchor-worker", worker.run_forever)
        anchor.start()
        state.background.append(anchor)
