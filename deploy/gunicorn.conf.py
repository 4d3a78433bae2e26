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
accesslog = "-"
# Never log request headers: they carry bearer tokens.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(L)ss'
