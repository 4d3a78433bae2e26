"""gunicorn settings for the registry: a few workers with threads (reads dominate)."""

import multiprocessing
import os

bind = os.environ.get("NDR_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("NDR_WORKERS", min(4, multiprocessing.cpu_count() * 2)))
threads = int(os.environ.get("NDR_THREADS", "4"))
worker_class = "gthread"
timeout = 60
graceful_timeout = 30
keepalive = 5
accesslog = os.environ.get("NDR_ACCESS_LOG", "-")
# Never log request headers: they carry bearer tokens and session cookies. The request line can
# carry a token too (`?access_token=`, refused by the app with a 400 but logged all the same):
# RedactingLogger replaces token values in every atom with [redacted] (F12).
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(L)ss'
logger_class = "registry.access_log.RedactingLogger"
# Everything the server creates (database, keys, search index, logs) is private to the service
# user, as systemd's UMask=0077 makes it in production. (gunicorn's own `umask` setting only
# covers unix sockets.) The registry also makes its database and key files 0600 itself.
os.umask(0o077)


_indexer = None  # the `ndr search indexer` process beside the workers (Tantivy only)


def _start_indexer(server):  # type: ignore[no-untyped-def]
    """Apply the search change feed in a process of its own: in a web worker the indexer
    thread shares the GIL with the request threads, fell behind under a publish load, and
    every search then waited for it. The workers stand by (NDR_SEARCH_INDEXER_PROCESS): if
    this process dies, one of them takes the feed lease when it expires."""
    global _indexer
    import subprocess
    import sys

    from registry.config import Settings

    settings = Settings()
    if (settings.search_backend or "tantivy") != "tantivy" or not settings.run_background \
            or os.environ.get("NDR_SEARCH_INDEXER", "process") != "process":
        return
    os.environ["NDR_SEARCH_INDEXER_PROCESS"] = "1"  # inherited by the workers forked next
    _indexer = subprocess.Popen([sys.executable, "-c", "from registry.cli import main; main()",
                                 "search", "indexer"])
    server.log.info("search indexer process %s started", _indexer.pid)


_sequencer = None  # the `ndr sequencer` process: one publish batch for every worker


def _start_sequencer(server):  # type: ignore[no-untyped-def]
    """Sequence every worker's publishes in one process (registry/datasets/sequencer_socket):
    per-worker batches held one or two writes, and the workers' batches queued for the
    catalogue's write lock in turn. Workers record a write themselves whenever this process
    is not there (not yet started, restarting, killed). NDR_SEQUENCER=worker turns it off."""
    global _sequencer
    import subprocess
    import sys

    from registry.config import Settings

    settings = Settings()
    if not settings.publish_batch or os.environ.get("NDR_SEQUENCER", "process") != "process":
        return
    from registry.datasets.sequencer_socket import socket_path

    # inherited by the workers forked next
    os.environ["NDR_SEQUENCER_SOCKET"] = str(socket_path(settings))
    _sequencer = subprocess.Popen([sys.executable, "-c", "from registry.cli import main; main()",
                                   "sequencer"])  # on NDR_SEQUENCER_SOCKET
    server.log.info("publish sequencer process %s started", _sequencer.pid)


def on_exit(server):  # type: ignore[no-untyped-def]
    for process in (_indexer, _sequencer):
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except Exception:
                process.kill()


def on_starting(server):  # type: ignore[no-untyped-def]
    """In the master, before any worker forks: create the secrets that would otherwise be made
    lazily by every worker at once (session secret, anchor journal key). Creation is race-free
    anyway (anchoring.private_files); doing it once here also makes a bad file mode stop the
    master with one clear message instead of every worker failing to boot."""
    from registry.bootstrap import prepare_secrets
    from registry.config import Settings

    prepare_secrets(Settings())
    _start_indexer(server)
    _start_sequencer(server)
