"""Helpers the browser suites share: screenshots, and a proof bundle tampered with on its way
to the page (so the in-browser verifier, not the server, meets the flipped byte)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, Route

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def shot(page: Page, name: str, tmp_path: Path, *, full_page: bool = True) -> Path:
    """A screenshot into docs/screenshots with NDR_SCREENSHOTS set, else into tmp_path."""
    target = SCREENSHOTS if os.environ.get("NDR_SCREENSHOTS") else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    path = target / name
    page.screenshot(path=str(path), full_page=full_page)
    return path


def tamper_proofs(page: Page, change: Callable[[dict[str, Any]], None]) -> None:
    """Every proof bundle this page fetches reaches it with `change` applied."""
    def handle(route: Route) -> None:
        response = route.fetch()
        bundle = response.json()
        change(bundle)
        route.fulfill(response=response, body=json.dumps(bundle, ensure_ascii=False),
                      content_type="application/json")
    page.route("**/proof", handle)
