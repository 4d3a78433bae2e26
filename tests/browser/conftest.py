"""A real portal on 127.0.0.1 (werkzeug server in a thread) and Debian's headless Chromium.

Under CI (CI=true) a missing Chromium fails the run: the browser tests are part of `make test`
and must never be silently skipped there. Locally they are skipped without /usr/bin/chromium.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from tests.conftest import RegistryHarness, build_registry
from tests.web.conftest import compile_translations

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@dataclass
class LivePortal:
    harness: RegistryHarness
    url: str

    def sign_checkpoint(self) -> None:
        """What the background loop does about every second, done now and deterministically."""
        state = self.harness.state
        with state.db.write() as session:
            state.log.sign_checkpoint_if_grown(session)


@pytest.fixture(scope="session")
def live_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePortal]:
    from registry.demo import load_demo_catalogue

    compile_translations()
    root = tmp_path_factory.mktemp("portal")
    harness = build_registry(f"sqlite:///{root / 'registry.db'}", root / "var")
    load_demo_catalogue(harness.state)
    server = make_server("127.0.0.1", 0, harness.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="portal", daemon=True)
    thread.start()
    try:
        yield LivePortal(harness, f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(timeout=10)
        harness.state.stop()
        harness.state.db.dispose()


# One Playwright (and one Chromium) per test process. Other suites import these fixtures into
# their own modules (tests/audit/test_browser_v2.py), which makes pytest create the session
# fixture twice; a second `sync_playwright()` in the same process fails ("Sync API inside the
# asyncio loop"), so every instance of the fixture shares the first one, and the last to finish
# closes it.
_SHARED: dict[str, Any] = {}


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    if not _SHARED:
        playwright = sync_playwright().start()
        _SHARED.update(playwright=playwright, users=0, browser=playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS))
    _SHARED["users"] += 1
    try:
        yield _SHARED["browser"]
    finally:
        _SHARED["users"] -= 1
        if _SHARED["users"] == 0:
            _SHARED.pop("browser").close()
            _SHARED.pop("playwright").stop()
            _SHARED.clear()


@pytest.fixture
def page(browser) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()
