"""A throwaway PostgreSQL server for the tests and benchmarks: its own data directory and port.

Why not a shared server: the machine starts no database, and a developer's own server must not
be touched by a test run. Why not pytest-postgresql: the tests run as root under CI, and
``initdb`` refuses root; this starts the Debian binaries as the ``postgres`` system user instead,
with trust authentication on 127.0.0.1 only, and removes everything on stop.

``python -m tests.support.postgres_server`` starts one in the foreground and prints its admin
URL, for running a benchmark by hand.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries, or the server would not start: the message says which."""


def find_bin_dir() -> Path:
    """The directory of ``initdb``/``pg_ctl``: Debian keeps them off PATH, per major version."""
    env = os.environ.get("NDR_PG_BIN")
    candidates = [env] if env else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    which = shutil.which("pg_ctl")
    if which:
        candidates.append(str(Path(which).resolve().parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl); `make postgres` installs Debian's "
        "postgresql package")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One scratch server. ``admin_url`` is a libpq URL for the ``postgres`` superuser."""

    def __init__(self, *, port: int | None = None) -> None:
        self.bin_dir = find_bin_dir()
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="ndr-pg-"))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "socket"
        self._run_as: str | None = None
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            try:
                pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PostgresUnavailable("running as root and no 'postgres' user to run the "
                                          "server as") from exc
            self._run_as = "postgres"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _command(self, *args: str) -> list[str]:
        if self._run_as:
            return ["runuser", "-u", self._run_as, "--", *args]
        return list(args)

    def _run(self, *args: str) -> None:
        result = subprocess.run(self._command(*args), capture_output=True, text=True,
                                timeout=120, check=False)
        if result.returncode != 0:
            raise PostgresUnavailable(f"{Path(args[0]).name} failed: "
                                      f"{(result.stderr or result.stdout).strip()[-2000:]}")

    def start(self) -> PostgresServer:
        self.socket_dir.mkdir(parents=True)
        if self._run_as:
            entry = pwd.getpwnam(self._run_as)
            for path in (self.root, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run(str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
                  "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        # Durability settings are off: the data directory is deleted afterwards, and the crash
        # tests kill the registry, not the database server.
        options = (f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=300 -c shared_buffers=256MB")
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l",
                  str(self.root / "server.log"), "-o", options, "-w", "-t", "60", "start")
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise PostgresUnavailable(f"the server did not accept connections on {self.port}")

    def stop(self) -> None:
        if self.data_dir.exists():
            subprocess.run(self._command(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir),
                                         "-m", "immediate", "-w", "stop"),
                           capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def admin_url(configured: str | None = None) -> Iterator[str]:
    """The configured server's admin URL, else a scratch server's for the duration.

    For benchmarks: ``NDR_BENCH_PG=postgresql://…`` measures an existing server, and with
    nothing configured the run still measures a real PostgreSQL, started and removed here.
    """
    if configured:
        yield configured
        return
    with PostgresServer() as server:
        yield server.admin_url


def main() -> int:
    with PostgresServer(port=int(sys.argv[1]) if len(sys.argv) > 1 else None) as server:
        print(server.admin_url, flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    raise SystemExit(main())
