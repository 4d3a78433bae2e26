"""The portal on a phone (390×844) and an officer's conflicting edit, in headless Chromium.

Every page an officer or a citizen is sent to must be usable at 390 px: no sideways scrolling,
the Verify button on screen and working. Screenshots are taken at desktop (1280×800) and phone
size; NDR_SCREENSHOTS=1 writes them to docs/screenshots/, otherwise to a temporary directory.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import LivePortal
from tests.browser.pages import shot
from tests.web.conftest import demo_password

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
STEPS = ("fetch", "metadata", "leaf", "signature", "inclusion")
OFFICER = "beijing-transport@demo.ndr.example"


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def _no_sideways_scrolling(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size["width"]  # type: ignore[index]
    assert width <= viewport, f"{page.url} is {width}px wide in a {viewport}px window"


def _context_page(browser: Browser, viewport: dict[str, int]) -> Iterator[Page]:
    context = browser.new_context(locale="zh-CN", viewport=viewport,
                                  has_touch=viewport is PHONE)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    yield from _context_page(browser, PHONE)


@pytest.fixture
def desktop(browser: Browser) -> Iterator[Page]:
    yield from _context_page(browser, DESKTOP)


def _open(page: Page, portal: LivePortal, query: str) -> None:
    page.goto(portal.url + "/datasets?q=" + query)
    page.locator(".cards h3 a").first.click()
    expect(page.locator("h1#title")).to_be_visible()


def _sign_in(page: Page, portal: LivePortal) -> None:
    page.goto(portal.url + "/signin")
    page.get_by_label("电子邮箱").fill(OFFICER)
    page.get_by_label("密码").fill(demo_password(portal.harness, OFFICER))
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("link", name="新建条目")).to_be_visible()


def test_history_and_verify_work_on_a_phone(phone: Page, live_portal: LivePortal,
                                            tmp_path: Path) -> None:
    live_portal.sign_checkpoint()
    _open(phone, live_portal, "公共自行车")
    _no_sideways_scrolling(phone)
    button = phone.locator("tr.current button.verify-button")
    button.scroll_into_view_if_needed()
    expect(button).to_be_visible()
    box = button.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert box["height"] >= 40                      # a finger can hit it
    shot(phone, "history-phone.png", tmp_path, full_page=False)
    button.tap()
    panel = phone.locator("#verify-panel")
    expect(panel).to_have_attribute("data-outcome", "ok")
    assert {step: phone.locator(f'#verify-steps li[data-step="{step}"]').get_attribute(
        "data-result") for step in STEPS} == dict.fromkeys(STEPS, "ok")
    panel_box = panel.bounding_box()
    assert panel_box is not None and panel_box["y"] < PHONE["height"]   # brought on screen
    _no_sideways_scrolling(phone)
    # The panel speaks Chinese: once hashes, key ids and the log's name are taken out, no
    # English word is left.
    text = phone.locator("#verify-panel").inner_text()
    origin = live_portal.harness.state.log.origin
    rest = re.sub(r"[0-9a-f]{8,}…?", " ", text.replace(origin, " "))
    assert not re.findall(r"[A-Za-z]{3,}", rest), rest
    path = shot(phone, "verified-phone.png", tmp_path, full_page=False)
    assert _png_size(path) == (PHONE["width"], PHONE["height"])
    assert phone.js_errors == []  # type: ignore[attr-defined]


def test_a_conflicting_edit_is_shown_side_by_side_and_reapplied(desktop: Page,
                                                                 live_portal: LivePortal,
                                                                 tmp_path: Path) -> None:
    harness = live_portal.harness
    _sign_in(desktop, live_portal)
    _open(desktop, live_portal, "公交线路")
    desktop.get_by_role("link", name="编辑").click()
    desktop.get_by_label("标题（中文）").fill("北京市公交线路及站点信息（2025 年版）")
    dataset_id = desktop.url.split("/datasets/")[1].split("/")[0]
    other = harness.client.patch(f"/api/v1/datasets/{dataset_id}",
                                 headers=harness.auth(harness.token("beijing-transport")),
                                 json={"metadata": {"update_cycle": "daily"}})
    assert other.status_code == 200
    desktop.get_by_role("button", name="发布", exact=True).click()
    expect(desktop.locator("h1")).to_have_text("他人已修改了该条目")
    expect(desktop.locator("#your-change")).to_contain_text("北京市公交线路及站点信息（2025 年版）")
    expect(desktop.locator("#their-change")).to_contain_text("每日")
    assert harness.client.get(f"/api/v1/datasets/{dataset_id}").get_json()["metadata"][
        "title"]["zh"] == "北京市公交线路及站点信息"               # nothing saved yet
    desktop.get_by_role("button", name="发布", exact=True).click()
    expect(desktop.locator("h1#title")).to_have_text("北京市公交线路及站点信息（2025 年版）")
    body = harness.client.get(f"/api/v1/datasets/{dataset_id}").get_json()
    assert body["metadata"]["update_cycle"] == "daily"             # the other change is kept


def _conflict(page: Page, portal: LivePortal, cycle: str) -> None:
    """The officer edits the congestion index while a colleague changes its update cycle."""
    harness = portal.harness
    _open(page, portal, "道路交通拥堵指数")
    page.get_by_role("link", name="编辑").click()
    page.get_by_label("标题（中文）").fill("北京市道路交通拥堵指数（工作日）")
    page.get_by_label("摘要（中文）").fill("工作日早晚高峰的道路交通拥堵指数。")
    dataset_id = page.url.split("/datasets/")[1].split("/")[0]
    other = harness.client.patch(f"/api/v1/datasets/{dataset_id}",
                                 headers=harness.auth(harness.token("beijing-transport")),
                                 json={"metadata": {"update_cycle": cycle,
                                                    "keywords": ["拥堵指数", cycle]}})
    assert other.status_code == 200
    page.get_by_role("button", name="发布", exact=True).click()
    expect(page.locator("h1")).to_have_text("他人已修改了该条目")


def test_changed_pages_fit_a_phone_and_a_desktop(browser: Browser, live_portal: LivePortal,
                                                 tmp_path: Path) -> None:
    """Each page this work changed, at both sizes: no sideways scrolling, and a screenshot."""
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        for page in _context_page(browser, viewport):
            _open(page, live_portal, "公共自行车")
            slug = page.url.split("/datasets/")[1]
            shot(page, f"dataset-{size}.png", tmp_path)
            pages = {"diff": f"/datasets/{slug}/changes?from=1&to=2",
                     "audit": "/audit?old=5&new=9", "not-found": "/no/such/page"}
            for name, url in pages.items():
                page.goto(live_portal.url + url)
                _no_sideways_scrolling(page)
                shot(page, f"{name}-{size}.png", tmp_path)
            _sign_in(page, live_portal)
            page.get_by_role("link", name="新建条目").click()
            page.get_by_label("标题（中文）").fill("测试条目")
            page.get_by_label("信息资源代码").fill("有 空格")
            page.get_by_label("发布日期").fill("2024-13-01")
            page.get_by_role("button", name="发布", exact=True).click()
            expect(page.locator("#error-summary")).to_contain_text("请按“年-月-日”填写日期")
            _no_sideways_scrolling(page)
            shot(page, f"form-errors-{size}.png", tmp_path, full_page=False)
            _conflict(page, live_portal, "realtime" if size == "phone" else "daily")
            _no_sideways_scrolling(page)
            shot(page, f"conflict-{size}.png", tmp_path, full_page=False)
            assert page.js_errors == []  # type: ignore[attr-defined]
