"""Real gunicorn, real files. F19: a first start with four workers and no keys yet boots every
time, and every worker uses the same secrets. F12: a token in a URL never reaches the access
log. F8: a readable secret stops the server with a message naming the file."""

from __future__ import annotations

import multiprocessing
import re
import time
import urllib.error
import urllib.request
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from anchoring.anchor_backends.local_journal import load_journal_key
from anchoring.private_files import create_or_load
from registry.web.security import load_or_create_secret
from tests.security.servers import REPO, Gunicorn, _env, _free_port, _ndr_init, _wait_for

# post_fork: each worker imports the application's modules, then waits for all four, so that
# they reach create_app() (and the lazily created secrets) together, as on a fast machine.
READY_HOOK = '''
import os, time
from pathlib import Path

def post_fork(server, worker):
    import app  # noqa: F401 - the slow imports, done before the barrier
    barrier = Path(os.environ["NDR_VAR_DIR"]) / "barrier"
    barrier.mkdir(exist_ok=True)
    (barrier / str(os.getpid())).touch()
    deadline = time.monotonic() + 120
    while len(list(barrier.iterdir())) < 4 and time.monotonic() < deadline:
        time.sleep(0.001)

def post_worker_init(worker):
    worker.log.info("ndr-worker-ready %s", worker.pid)
'''


def _boot_four_workers(tmp_path: Path, run: int) -> tuple[Gunicorn, int, Path]:
    var = tmp_path / f"var{run}"
    _ndr_init(var)
    assert not (var / "session-secret.key").exists()  # made lazily, by the workers
    assert not (var / "anchor-journal.key").exists()
    hook = tmp_path / "ready_hook.py"
    hook.write_text(READY_HOOK)
    port = _free_port()
    server = Gunicorn(["--bind", f"127.0.0.1:{port}", "--workers", "4", "--threads", "2",
                       "--log-level", "info", "--config", str(hook)],
                      _env(var), tmp_path / f"gunicorn{run}.log")
    _wait_for(lambda: server.process.poll() is not None
              or server.text().count("ndr-worker-ready") >= 4, 180, "four workers")
    return server, port, var


def _signin_form(port: int) -> tuple[str, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/signin",
                                     headers={"Connection": "close"})
    with urllib.request.urlopen(request, timeout=30) as response:
        html = response.read().decode()
        cookie: SimpleCookie = SimpleCookie(response.headers["Set-Cookie"])
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token
    return cookie["ndr_session"].value, token.group(1)


def _post_signin(port: int, cookie: str, csrf: str, email: str) -> int:
    body = urllib.parse.urlencode({"email": email, "password": "not the password",
                                   "csrf_token": csrf}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/signin", data=body, method="POST",
        headers={"Cookie": f"ndr_session={cookie}", "Connection": "close",
                 "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@pytest.mark.parametrize("run", range(5))
def test_first_start_with_four_workers_boots_and_workers_agree(tmp_path: Path,
                                                                run: int) -> None:
    server, port, var = _boot_four_workers(tmp_path, run)
    try:
        log = server.text()
        assert server.process.poll() is None, log
        assert "Worker failed to boot" not in log and "FileExistsError" not in log, log
        assert log.count("ndr-worker-ready") == 4
        # one secret each, complete and private
        for name in ("session-secret.key", "anchor-journal.key"):
            assert (var / name).stat().st_mode & 0o777 == 0o600
        assert len((var / "session-secret.key").read_bytes().strip()) == 64
        assert b"BEGIN PRIVATE KEY" in (var / "anchor-journal.key").read_bytes()
        assert not [p for p in var.iterdir() if p.name.endswith(".tmp")]
        assert len(list((var / "barrier").iterdir())) == 4
        # A form from one worker posted on fresh connections (any worker): a worker with
        # another session secret would refuse its CSRF token (400).
        forms = [_signin_form(port) for _ in range(4)]
        statuses = [_post_signin(port, cookie, csrf, f"nobody{n}@example.cn")
                    for n, (cookie, csrf) in enumerate(forms)]
        assert statuses == [401] * len(forms), statuses
    finally:
        server.stop()


def _load_session_secret(path: str) -> bytes:
    return load_or_create_secret(Path(path))


def _load_journal_key(path: str) -> bytes:
    return load_journal_key(path).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


LOADERS = {"session-secret": _load_session_secret, "anchor-journal-key": _load_journal_key}


def _race(loader: str, path: str, ready: Any, start_at: Any,
          results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    ready.wait()  # every process is up; the test then sets the instant of the release
    while start_at.value == 0.0 or time.time() < start_at.value:
        pass  # released together, as forked workers reaching create_app
    try:
        results.put(("ok", LOADERS[loader](path)))
    except Exception as exc:  # reported to the test, which fails on it
        results.put(("error", repr(exc).encode()))


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_workers_loading_a_missing_secret_at_once_agree(tmp_path: Path, loader: str) -> None:
    """The race of F19 itself, through the very functions every worker calls at start:
    12 processes released at the same instant on a fresh path, 20 times over. Each must get
    the key (no FileExistsError, no half-written file) and all must get the same one."""
    context = multiprocessing.get_context("fork")
    for attempt in range(20):
        path = str(tmp_path / f"{loader}-{attempt}.key")
        results = context.Queue()
        ready = context.Barrier(13)
        start_at = context.Value("d", 0.0)
        processes = [context.Process(target=_race,
                                     args=(loader, path, ready, start_at, results))
                     for _ in range(12)]
        for process in processes:
            process.start()
        ready.wait(timeout=60)
        start_at.value = time.time() + 0.02  # all 12 spin on the clock until then
        outcomes = [results.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(30)
        errors = [detail for kind, detail in outcomes if kind == "error"]
        assert errors == [], f"attempt {attempt}: {errors[:3]}"
        assert len({detail for _, detail in outcomes}) == 1, f"attempt {attempt}: keys differ"
        assert Path(path).stat().st_mode & 0o777 == 0o600


def test_create_or_load_creates_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "one.key"
    first = create_or_load(path, lambda: b"first")
    second = create_or_load(path, lambda: b"second")
    assert first == (b"first", True) and second == (b"first", False)
    assert not [p for p in tmp_path.iterdir() if p.name != "one.key"]


def test_tokens_in_urls_never_reach_the_access_log(tmp_path: Path) -> None:
    var = tmp_path / "var"
    _ndr_init(var)
    port = _free_port()
    access = tmp_path / "access.log"
    server = Gunicorn(["--config", str(REPO / "deploy" / "gunicorn.conf.py")],
                      _env(var, NDR_BIND=f"127.0.0.1:{port}", NDR_WORKERS="2",
                           NDR_ACCESS_LOG=str(access)), tmp_path / "error.log")
    secrets = ["ndr_" + "S3cr3tT0k3n" * 4, "ndr_" + "AnotherOne" * 4, "plainsecret123"]
    urls = [f"/api/v1/datasets?access_token={secrets[0]}",
            f"/api/v1/datasets?q=x&q2={secrets[1]}",
            f"/datasets?token={secrets[2]}"]
    try:
        def up() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    return True
            except OSError:
                return server.process.poll() is not None
        _wait_for(up, 180, "gunicorn")
        assert server.process.poll() is None, server.text()
        for url in urls:
            request = urllib.request.Request(f"http://127.0.0.1:{port}{url}",
                                             headers={"Referer": f"http://x.example{url}"})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=30)
            assert refused.value.code == 400
            problem = refused.value.read().decode()
            assert "Authorization" in problem and secrets[0] not in problem
        _wait_for(lambda: access.exists()
                  and access.read_text().count("[redacted]") >= len(urls), 30, "log lines")
    finally:
        server.stop()
    text = access.read_text()
    for secret in secrets:
        assert secret not in text, text
    assert text.count('" 400 ') >= len(urls)
    assert "/api/v1/datasets?access_token=[redacted]" in text


def test_a_readable_session_secret_stops_gunicorn_with_a_clear_message(tmp_path: Path) -> None:
    var = tmp_path / "var"
    _ndr_init(var)
    secret = var / "session-secret.key"
    secret.write_text("a" * 64 + "\n")
    secret.chmod(0o644)
    port = _free_port()
    server = Gunicorn(["--config", str(REPO / "deploy" / "gunicorn.conf.py")],
                      _env(var, NDR_BIND=f"127.0.0.1:{port}", NDR_WORKERS="2"),
                      tmp_path / "error.log")
    try:
        server.process.wait(120)
    finally:
        server.stop()
    assert server.process.returncode != 0
    log = server.text()
    assert str(secret) in log and "chmod 600" in log, log
