"""The browser verifier (registry/web/static/verify.js) checks salted v2 entries in Chromium,
and refuses a wrong or missing salt."""

from __future__ import annotations

from tests.browser.conftest import browser, live_portal, page  # noqa: F401 - fixtures
from tests.catalogue.helpers import metadata

RUN = """async ([bundle, key]) => {
  const steps = {};
  const ok = await ndrVerify.verifyBundle(bundle, key, (id, passed, detail) => {
    steps[id] = [passed, detail]; });
  return [ok, steps];
}"""


def test_v2_government_bundle_verifies_in_chromium_and_a_wrong_salt_fails(  # type: ignore[no-untyped-def]
        page, live_portal) -> None:  # noqa: F811 - the imported fixtures
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
