""""Verify in your browser" on a hub's page for a federated (mirrored) entry, in headless
Chromium, on SQLite and PostgreSQL: every link of the chain is its own step and passes; a
flipped byte in what the hub serves (member checkpoint, cosignature, inclusion path, metadata)
fails the matching step and the summary says not verified.

Set NDR_SCREENSHOTS=1 to (re)write docs/screenshots/federated-*.png (zh and en, 1280x900 and
390x844).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.sync_api import Browser, Page, expect

from anchoring.anchor_backends.local_journal import LocalJournalBackend
from anchoring.anchor_worker import AnchorWorker
from registry.federation.mirror import Mirror, hub_dataset_id
from tests.browser.conftest import browser  # noqa: F401 - the shared Chromium
from tests.browser.pages import shot, tamper_proofs
from tests.federation.test_mirror import MEMBER_ORIGIN, Setup, setup  # noqa: F401
from tests.web.conftest import compile_translations

pytestmark = pytest.mark.browser
STEPS = ("fetch", "metadata", "member_signature", "member_inclusion", "cosignature",
         "hub_entry", "hub_signature", "hub_inclusion", "anchors")


def _sign_hub(env: Setup) -> None:
    with env.hub.state.db.write() as session:
        env.hub.state.log.sign_checkpoint_if_grown(session)


def _anchor_hub(env: Setup) -> None:
    """One anchor of the hub's log in a local signed journal (what the worker does per epoch)."""
    state = env.hub.state
    worker = AnchorWorker(state.db.write, state.log.latest_checkpoint,
                          LocalJournalBackend(state.db.write, Ed25519PrivateKey.generate()),
                          epoch_seconds=0, confirmations=1)
    report = worker.run_once()
    assert report.submitted_size is not None, report


@pytest.fixture
def federated(setup: Setup) -> tuple[Setup, str]:  # noqa: F811
    """A hub following one member, with a mirrored entry whose hub checkpoint is older than
    the anchored hub tree (so the anchors step checks a real consistency proof)."""
    compile_translations()
    setup.follow()
    first = setup.publish("Provincial road survey")
    setup.publish("River gauge readings")  # a member tree of 2+: a non-empty inclusion path
    setup.witness()
    assert Mirror(setup.hub.state).run_member(MEMBER_ORIGIN).mirrored == 2
    _sign_hub(setup)
    setup.publish("Bus stop inventory")
    setup.witness()  # a second member.checkpoint leaf on the hub
    assert Mirror(setup.hub.state).run_member(MEMBER_ORIGIN).mirrored == 1
    _sign_hub(setup)
    _anchor_hub(setup)
    return setup, hub_dataset_id(MEMBER_ORIGIN, first)


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[..., Page]]:  # noqa: F811
    contexts = []

    def make(locale: str = "zh-CN", width: int = 1280, height: int = 900) -> Page:
        context = browser.new_context(locale=locale, viewport={"width": width,
                                                               "height": height})
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors  # type: ignore[attr-defined]
        return page

    yield make
    for context in contexts:
        context.close()


def _verify(page: Page, url: str) -> dict[str, str]:
    page.goto(url)
    page.locator("tr.current button.verify-button").click()
    expect(page.locator("#verify-panel")).to_have_attribute(
        "data-outcome", re.compile("ok|failed"), timeout=30_000)
    print(page.locator("#verify-panel").inner_text())  # shown by pytest when a test fails
    return {step: page.locator(f'#verify-steps li[data-step="{step}"]').get_attribute(
        "data-result") or "" for step in STEPS}


def test_every_link_of_the_federated_chain_passes_in_zh_and_en(
        federated: tuple[Setup, str], open_page: Callable[..., Page], tmp_path: Path,
        database_url: str) -> None:
    env, hub_id = federated
    url = f"{env.hub_url}/datasets/{hub_id}"
    shots = database_url.startswith("sqlite")  # one set of pictures, not one per database
    for locale, lang, width, height in (("zh-CN", "zh", 1280, 900), ("en-US", "en", 1280, 900),
                                        ("zh-CN", "zh", 390, 844), ("en-US", "en", 390, 844)):
        page = open_page(locale, width, height)
        results = _verify(page, f"{url}?lang={lang}")
        assert results == dict.fromkeys(STEPS, "ok"), results
        summary = page.locator("#verify-summary")
        if lang == "zh":
            expect(summary).to_have_text("核验通过：此版本与成员日志记录完全一致，且枢纽日志承诺了它。")
            expect(page.locator('li[data-step="cosignature"]')).to_contain_text("枢纽已联署成员检查点")
        else:
            expect(summary).to_have_text("Verified: this version is exactly what the member's "
                                         "log recorded, and the hub's log commits to it.")
            expect(page.locator('li[data-step="hub_entry"]')).to_contain_text(
                "member.checkpoint leaf records exactly that cosigned checkpoint")
        # The anchors step checked a consistency proof to a larger anchored hub tree.
        expect(page.locator('li[data-step="anchors"]')).to_contain_text(
            "本地签名日志" if lang == "zh" else "local signed journal")
        # The member's key the page names is the member's own key.
        expect(page.locator("#verify-member-key")).to_have_text(
            env.member.state.log.verifier_key)
        assert page.js_errors == []  # type: ignore[attr-defined]
        if shots:
            kind = "desktop" if width > 1000 else "phone"
            shot(page, f"federated-{lang}-{kind}.png", tmp_path)


def _flip(b64: str, at: int) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[at] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _flip_signature_line(note: str, length: int) -> str:
    """Flip one byte of the Ed25519 signature in the note's signature line of `length` bytes
    (68: the member's checkpoint signature; 76: the hub's cosignature/v1)."""
    body, _, block = note.partition("\n\n")
    lines = block.rstrip("\n").split("\n")
    for i, line in enumerate(lines):
        name, blob = line.rsplit(" ", 1)
        if len(base64.b64decode(blob)) == length:
            lines[i] = f"{name} {_flip(blob, length - 5)}"
            return f"{body}\n\n" + "\n".join(lines) + "\n"
    raise AssertionError(f"no signature line of {length} bytes in {note!r}")


def _member_path(bundle: dict[str, Any]) -> None:
    assert bundle["member"]["inclusion_path"], "the member tree needs a path"
    bundle["member"]["inclusion_path"][0] = _flip(bundle["member"]["inclusion_path"][0], 0)


ATTACKS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "member checkpoint": (lambda b: b["member"].update(checkpoint=_flip_signature_line(
        b["member"]["checkpoint"], 68)), "member_signature"),
    "cosignature": (lambda b: b["member"].update(checkpoint=_flip_signature_line(
        b["member"]["checkpoint"], 76)), "cosignature"),
    "inclusion path": (_member_path, "member_inclusion"),
    "metadata": (lambda b: b["member"]["metadata"]["title"].update(zh="被篡改的标题"),
                 "metadata"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_flipped_byte_fails_the_matching_step(attack: str, federated: tuple[Setup, str],
                                                open_page: Callable[..., Page]) -> None:
    env, hub_id = federated
    change, failing = ATTACKS[attack]
    page = open_page("zh-CN")

    tamper_proofs(page, change)
    results = _verify(page, f"{env.hub_url}/datasets/{hub_id}")
    assert results[failing] == "failed", results
    assert results["fetch"] == results["hub_signature"] == results["hub_inclusion"] == "ok"
    if attack in ("cosignature", "inclusion path", "metadata"):
        # The other links still hold: only the tampered one fails.
        assert results["member_signature"] == "ok", results
    expect(page.locator("#verify-summary")).to_have_text("核验失败：请勿信任此版本。")
    expect(page.locator("#verify-panel")).to_have_attribute("data-outcome", "failed")
    assert "FAILED" not in page.locator(f'li[data-step="{failing}"]').inner_text()
