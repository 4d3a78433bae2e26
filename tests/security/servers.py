"""Real servers for the security tests: a gunicorn started as the deployment starts it, on a
fresh var directory initialised by `ndr init`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(var: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NDR_", "DATABASE_URL"))}
    return env | {"NDR_VAR_DIR": str(var), "NDR_CHECKPOINT_INTERVAL": "0.5",
                  "PYTHONPATH": str(REPO), "NDR_ANCHOR_JOURNAL_KEY_FILE":
                  str(var / "anchor-journal.key")} | extra


def _ndr_init(var: Path) -> None:
    subprocess.run([sys.executable, "-c", "from registry.cli import cli; cli()", "init"],
                   cwd=REPO, env=_env(var), check=True, capture_output=True, timeout=120)


def _wait_for(condition, deadline: float, what: str) -> None:  # type: ignore[no-untyped-def]
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Gunicorn:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *args, "app:create_app()"], cwd=REPO, env=env,
            start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=log.open("wb"))

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
