"""The browser verifier (registry/web/static/verify.js) checks salted v2 entries in Chromium,
and refuses a wrong or missing salt."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, LivePortal
from tests.catalogue.helpers import metadata
from tests.conftest import build_registry


@pytest.fixture(scope="module")
def portal_and_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LivePortal,
                                                                                  object]]:
    """Its own portal and Chromium, closed at the end of this module (the browser suite's
    session-wide Playwright must not be started twice in one process)."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is missing: run `make browser`")
    from playwright.sync_api import sync_playwright

    from registry.demo import load_demo_catalogue
    from tests.web.conftest import compile_translations

    compile_translations()
    root = tmp_path_factory.mktemp("portal-v2")
    harness = build_registry(f"sqlite:///{root / 'registry.db'}", root / "var")
    load_demo_catalogue(harness.state)
    server = make_server("127.0.0.1", 0, harness.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                 args=CHROMIUM_ARGS)
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.js_errors = errors  # type: ignore[attr-defined]
            yield LivePortal(harness, f"http://127.0.0.1:{server.server_port}"), page
            browser.close()
    finally:
        server.shutdown()
        thread.join(10)
        harness.state.stop()
        harness.state.db.dispose()

RUN = """async ([bundle, key]) => {
  const steps = {};
  const ok = await ndrVerify.verifyBundle(bundle, key, (id, passed, detail) => {
    steps[id] = [passed, detail]; });
  return [ok, steps];
}"""


def test_v2_government_bundle_verifies_in_chromium_and_a_wrong_salt_fails(  # type: ignore[no-untyped-def]
        portal_and_page) -> None:
    live_portal, page = portal_and_page
    harness = live_portal.harness
    harness.org("audit-v2")
    editor = harness.auth(harness.token("audit-v2"))
    created = harness.client.post("/api/v1/datasets", headers=editor, json={
        "visibility": "government",
        "metadata": metadata(title={"zh": "内部名单", "en": "Internal list"})})
    assert created.status_code == 201, created.get_json()
    live_portal.sign_checkpoint()
    bundle = harness.client.get(f"/api/v1/datasets/{created.get_json()['id']}/versions/1/proof",
                                headers=editor).get_json()
    assert '"v":2' in bundle["entry"] and len(bundle["metadata_salt"]) == 64
    key = harness.client.get("/log/key").get_data(as_text=True)

    page.goto(live_portal.url + "/datasets?q=MSHA")
    page.locator(".cards h3 a").first.click()  # any dataset page loads verify.js
    page.wait_for_function("() => window.ndrVerify !== undefined")
    ok, steps = page.evaluate(RUN, [bundle, key])
    assert ok, steps
    assert "v2, salted" in steps["metadata"][1]

    wrong = {**bundle, "metadata_salt": "0" * 64}
    ok, steps = page.evaluate(RUN, [wrong, key])
    assert not ok and steps["metadata"][0] is False
    missing = {k: v for k, v in bundle.items() if k != "metadata_salt"}
    ok, steps = page.evaluate(RUN, [missing, key])
    assert not ok and "no salt" in steps["metadata"][1]
    assert page.js_errors == []
