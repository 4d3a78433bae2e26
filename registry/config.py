"""Settings, read once from environment variables (the README's configuration table)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Settings:
    """Everything the service can be told; defaults give the embedded one-machine set-up."""

    var_dir: Path = field(default_factory=lambda: Path(os.environ.get("NDR_VAR_DIR",
                                                                       PROJECT_ROOT / "var")))
    database_url: str = ""
    log_origin: str = field(default_factory=lambda: os.environ.get(
        "NDR_LOG_ORIGIN", "registry.localhost/log"))
    log_key_file: Path | None = None
    log_signing_key: str | None = field(default_factory=lambda: os.environ.get(
        "NDR_LOG_PRIVATE_KEY") or None)
    checkpoint_interval: float = field(default_factory=lambda: _env_float(
        "NDR_CHECKPOINT_INTERVAL", 1.0))
    # the self-audit re-derives the whole log and catalogue once per this many seconds
    self_audit_sweep_seconds: float = field(default_factory=lambda: _env_float(
        "NDR_SELF_AUDIT_SWEEP_SECONDS", 30.0))
    run_background: bool = field(default_factory=lambda: _env_bool("NDR_BACKGROUND", True))
    # sqlite | postgres (in the database) or opensearch | elasticsearch (a search cluster, fed
    # through the outbox; each has its own official client)
    search_backend: str = field(default_factory=lambda: os.environ.get("NDR_SEARCH_BACKEND", ""))
    # the cluster's node URLs, comma-separated (ELASTICSEARCH_URL is the older name)
    elasticsearch_url: str | None = field(default_factory=lambda: os.environ.get(
        "NDR_SEARCH_URL") or os.environ.get("ELASTICSEARCH_URL") or None)
    # a search in a worker that does not apply the change feed waits only for changes older
    # than this (0: every change committed before the search; see search/tantivy_engine.py)
    search_max_lag_ms: float = field(default_factory=lambda: _env_float(
        "NDR_SEARCH_MAX_LAG_MS", 1000.0))
    # set by deploy/gunicorn.conf.py when it runs `ndr search indexer` beside the workers
    search_indexer_process: bool = field(default_factory=lambda: _env_bool(
        "NDR_SEARCH_INDEXER_PROCESS", False))
    search_index_prefix: str = field(default_factory=lambda: os.environ.get(
        "NDR_SEARCH_INDEX_PREFIX", "ndr"))
    # The Tantivy index directory (one per registry; default var/search-index).
    search_index_dir: Path | None = field(default_factory=lambda: (
        Path(os.environ["NDR_SEARCH_INDEX_DIR"]) if os.environ.get("NDR_SEARCH_INDEX_DIR")
        else None))
    max_body_bytes: int = field(default_factory=lambda: _env_int("NDR_MAX_BODY_BYTES",
                                                                  1024 * 1024))
    secret_key_file: Path | None = None
    anchor_backend: str = field(default_factory=lambda: os.environ.get("NDR_ANCHOR_BACKEND",
                                                                       "local"))
    anchor_epoch_seconds: float = field(default_factory=lambda: _env_float(
        "NDR_ANCHOR_EPOCH_SECONDS", 60.0))
    anchor_confirmations: int = field(default_factory=lambda: _env_int(
        "NDR_ANCHOR_CONFIRMATIONS", 1))
    anchor_in_process: bool = field(default_factory=lambda: _env_bool("NDR_ANCHOR_INPROCESS",
                                                                       True))
    public_url: str = field(default_factory=lambda: os.environ.get(
        "NDR_PUBLIC_URL", "http://127.0.0.1:8000"))
    # How many reverse proxies (nginx) stand in front and may be believed about the client
    # address and https (X-Forwarded-For/-Proto). 0: headers ignored, as without a proxy.
    trusted_proxies: int = field(default_factory=lambda: _env_int("NDR_TRUSTED_PROXIES", 0))
    # Concurrent API writes of a process are recorded in batches (one transaction, one commit).
    publish_batch: bool = field(default_factory=lambda: _env_bool("NDR_PUBLISH_BATCH", True))
    publish_batch_size: int = field(default_factory=lambda: _env_int("NDR_PUBLISH_BATCH_SIZE",
                                                                      32))
    publish_linger_ms: float = field(default_factory=lambda: _env_float(
        "NDR_PUBLISH_LINGER_MS", 2.0))
    # set by deploy/gunicorn.conf.py when it runs `ndr sequencer` beside the workers: the
    # Unix socket on which that process batches every worker's publishes
    sequencer_socket: Path | None = field(default_factory=lambda: (
        Path(os.environ["NDR_SEQUENCER_SOCKET"]) if os.environ.get("NDR_SEQUENCER_SOCKET")
        else None))

    def __post_init__(self) -> None:
        self.var_dir = Path(self.var_dir)
        if not self.database_url:
            self.database_url = os.environ.get("DATABASE_URL") or (
                f"sqlite:///{self.var_dir / 'registry.db'}")
        os.environ.setdefault("NDR_ANCHOR_JOURNAL_KEY_FILE",
                              str(self.var_dir / "anchor-journal.key"))
        if self.log_key_file is None:
            self.log_key_file = Path(os.environ.get("NDR_LOG_KEY_FILE",
                                                    self.var_dir / "log-signing.key"))
        if self.secret_key_file is None:
            self.secret_key_file = Path(os.environ.get("NDR_SECRET_KEY_FILE",
                                                       self.var_dir / "session-secret.key"))
        if not self.search_backend:
            self.search_backend = "tantivy"
        if self.search_index_dir is None:
            self.search_index_dir = self.var_dir / "search-index"
