"""Assembling a running registry from settings: database, log key, search backend, loops.

Shared by `create_app()` and the CLI so both see exactly the same registry.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anchoring.keys import create_key_file, load_key_file, load_key_from_env
from anchoring.log_store import TransparencyLog
from anchoring.note import NoteSigner
from anchoring.private_files import SecretFileError, require_private
from registry.config import Settings
from registry.database import Database
from registry.datasets.sequencer import PublishSequencer, sqlite_lock_file
from registry.datasets.sequencer_socket import RemoteSequencer, socket_key
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


def secret_files(settings: Settings) -> list[Path]:
    """Every file whose content is a secret: log signing key, session secret, anchor journal
    key, EVM submitter key (those configured or at their default place)."""
    candidates = [settings.log_key_file, settings.secret_key_file,
                  os.environ.get("NDR_ANCHOR_JOURNAL_KEY_FILE"),
                  os.environ.get("NDR_EVM_KEY_FILE")]
    return [Path(c) for c in candidates if c]


def check_secret_files(settings: Settings) -> None:
    """At start: refuse to run when any existing secret file is readable by group or others
    (F8). A 0644 session secret lets every local user forge any officer's session."""
    for path in secret_files(settings):
        if path.exists():
            require_private(path)


def prepare_secrets(settings: Settings) -> None:
    """Create the lazily made secrets now, once (gunicorn's master calls this before forking
    workers), and check every secret file's mode. The log signing key is not made here: it
    comes from `ndr init`, and a missing one is reported by the workers (NotInitialised)."""
    import secrets

    from anchoring.private_files import create_or_load

    create_or_load(Path(settings.secret_key_file or settings.var_dir / "session-secret.key"),
                   lambda: secrets.token_hex(32).encode() + b"\n")
    if settings.anchor_backend == "local":
        from anchoring.anchor_backends.local_journal import load_journal_key

        load_journal_key(os.environ.get("NDR_ANCHOR_JOURNAL_KEY_FILE")
                         or settings.var_dir / "anchor-journal.key")
    check_secret_files(settings)
    private_database_files(settings.database_url)


SQLITE_FILE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL and in-memory databases)."""
    if not database_url.startswith("sqlite:///"):
        return None
    path = database_url.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def private_database_files(database_url: str) -> None:
    """The SQLite database and its -wal/-shm/-journal files are 0600 (F16): the catalogue holds
    government-only entries and password hashes. The main file is created 0600 before SQLite
    opens it (SQLite gives its -wal and -shm files the main file's mode), and files left 0644
    by an older release are tightened."""
    main = sqlite_path(database_url)
    if main is None:
        return
    main.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(main, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for suffix in SQLITE_FILE_SUFFIXES:
        path = main.with_name(main.name + suffix)
        try:
            if os.stat(path).st_mode & 0o077:
                os.chmod(path, 0o600)
        except FileNotFoundError:
            continue
        except PermissionError as exc:
            raise SecretFileError(f"{path} is readable by group or others and this user "
                                  f"cannot change that ({exc}); run: chmod 600 {path}") from None


def build_state(settings: Settings, *, database: Database | None = None) -> RegistryState:
    check_secret_files(settings)
    private_database_files(settings.database_url)
    db = database or Database(settings.database_url)
    signer = load_signer(settings)
    log = TransparencyLog(settings.log_origin, signer, key_loader=lambda: load_signer(settings))
    search = make_backend(settings.search_backend, elasticsearch_url=settings.elasticsearch_url,
                          index_prefix=settings.search_index_prefix,
                          index_path=settings.search_index_dir,
                          max_lag=settings.search_max_lag_ms / 1000)
    if hasattr(search, "attach"):
        from registry.datasets.search_sync import documents

        # this process may apply the change feed (under its lease) and fill a new index
        search.attach(db.write, documents, read_sessions=db.read)
    state = RegistryState(settings=settings, db=db, log=log, search=search)
    if settings.publish_batch:
        state.sequencer = PublishSequencer(
            db, state.services, max_batch=settings.publish_batch_size,
            linger=settings.publish_linger_ms / 1000, lock_file=sqlite_lock_file(db))
        if settings.sequencer_socket is not None:
            state.remote_sequencer = RemoteSequencer(settings.sequencer_socket,
                                                     socket_key(settings))
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


def build_self_audit(state: RegistryState):  # type: ignore[no-untyped-def]
    """The self-audit loop with the catalogue checks plugged in (see anchoring/self_audit)."""
    from anchoring.self_audit import SelfAudit
    from registry.datasets.log_audit import catalogue_auditor

    return SelfAudit(state.db.read, state.db.write, state.log,
                     catalogue=catalogue_auditor(state.log),
                     interval_seconds=state.settings.checkpoint_interval,
                     sweep_seconds=state.settings.self_audit_sweep_seconds)


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
    state.search.run_outbox(state.db.write, stop=stop)


def _feed_indexer_loop(state: RegistryState, stop: threading.Event) -> None:
    """Apply the search change feed to this host's Tantivy index; every process runs the loop,
    the feed lease lets exactly one of them write."""
    state.search.run(stop)


def warm_up_search(state: RegistryState) -> None:
    """Load jieba's dictionary before the first user asks (a second or more). A failure only
    costs the first search that time, so it is logged, not raised."""
    from search.analysis import warm_up

    try:
        warm_up()
    except Exception:
        log.exception("search warm-up failed; the first search loads the dictionary")


def start_background(state: RegistryState) -> None:
    """Checkpoint signing (about every second when the tree grew) and, unless the operator runs
    `ndr anchor run` separately (NDR_ANCHOR_INPROCESS=0), the anchor worker."""
    from anchoring.checkpointer import CheckpointLoop

    threading.Thread(target=warm_up_search, args=(state,), name="ndr-search-warm-up",
                     daemon=True).start()
    loop = CheckpointLoop(state.db.write, state.log, state.settings.checkpoint_interval)
    loop.start()
    state.background.append(loop)
    audit = build_self_audit(state)
    audit.start()
    state.background.append(audit)
    if state.search.name == "elasticsearch":
        outbox = BackgroundThread("ndr-search-outbox", _outbox_loop, state)
        outbox.start()
        state.background.append(outbox)
    if state.search.name == "tantivy":
        if state.settings.search_indexer_process:
            state.search.stand_by(state.search.lease_ttl * 2)  # type: ignore[attr-defined]
        indexer = BackgroundThread("ndr-search-indexer", _feed_indexer_loop, state)
        indexer.start()
        state.background.append(indexer)
    if state.settings.anchor_in_process:
        worker = build_anchor_worker(state)
        anchor = BackgroundThread("ndr-anchor-worker", worker.run_forever)
        anchor.start()
        state.background.append(anchor)
    from registry.federation.background import start_federation

    start_federation(state)
