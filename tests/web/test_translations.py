"""No English left in the Chinese portal.

Two checks, because each misses what the other finds:
- every msgid the portal uses (Python `_`/`_l`, templates) has a Chinese translation that is
  not fuzzy: a new English string without its translation fails here;
- every page rendered in Chinese, its text nodes and the attributes people see (placeholder,
  aria-label, title), has no Latin word left once the catalogue's own data (titles, names,
  URLs: what departments typed) and an allow-list of codes and proper names are taken out —
  this catches English that never went through gettext (an enum value, an exception text).
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from sqlalchemy import select

from registry.datasets.models import Dataset, DatasetVersion
from registry.organizations.models import Organization, User
from tests.conftest import RegistryHarness
from tests.web.conftest import TRANSLATIONS, csrf_of, demo_password

WEB = Path(__file__).resolve().parents[2] / "registry" / "web"

# Codes, units, formats and proper names that stay in Latin script in Chinese text.
ALLOWED = {
    "JSON", "CSV", "XLSX", "SHA", "URL", "HTTP", "http", "https", "API", "GB", "EVM",
    "ChainMaker", "YYYY", "MM", "DD", "text", "csv", "name", "example", "gov", "cn", "string",
    "integer", "decimal", "boolean", "date", "datetime", "binary", "geometry", "other",
    "C2SP", "tlog", "checkpoint", "signed", "note", "tiles", "log", "key", "api", "v1",
    "anchors", "KB", "MB", "TB", "Ed25519", "English", "XSS", "Markdown",
}
_VERSION = re.compile(r"v[0-9]+")  # "v2": a version number, as in the history table
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]+")
_SKIP_TAGS = {"script", "style", "code", "pre", "time"}
_VISIBLE_ATTRIBUTES = ("placeholder", "aria-label", "title", "alt")


def test_every_msgid_has_a_chinese_translation() -> None:
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    keywords = {"_": None, "_l": None, "gettext": None, "lazy_gettext": None,
                "ngettext": (1, 2)}
    used = {message if isinstance(message, str) else message[0]
            for _file, _line, message, _comments, _context in extract_from_dir(
                str(WEB), method_map, keywords=keywords)}
    with (TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.po").open("rb") as source:
        catalog = read_po(source)
    missing = sorted(m for m in used if m and (catalog.get(m) is None
                                               or not catalog.get(m).string
                                               or catalog.get(m).fuzzy))
    assert not missing, f"msgids without a Chinese translation: {missing}"


class _Text(HTMLParser):
    """Text people see: text nodes outside code/script, and a few attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.found: list[str] = []

    def _skipping(self) -> bool:
        return any(skip for _tag, skip in self.stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        foreign = (values.get("lang") or "zh").lower() not in ("zh", "zh-cn")
        void = tag in ("input", "meta", "link", "br", "img", "hr")
        if not void:
            self.stack.append((tag, tag in _SKIP_TAGS or foreign))
        if not (self._skipping() or foreign):
            self.found.extend(v for k, v in attrs if k in _VISIBLE_ATTRIBUTES and v)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data: str) -> None:
        if not self._skipping() and data.strip():
            self.found.append(data.strip())


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)] if value is not None else []


# Metadata fields holding codes, not text: the page must show their label, so their values
# are not taken out as "data" (a raw `public` or `monthly` on a Chinese page must be found).
CODED_FIELDS = ("access_rights", "update_cycle", "open_attribute", "data_grade", "themes",
                "language")


def _text_fields(metadata: dict[str, Any]) -> dict[str, Any]:
    text = {k: v for k, v in metadata.items() if k not in CODED_FIELDS}
    if isinstance(text.get("sharing"), dict):
        text["sharing"] = {k: v for k, v in text["sharing"].items() if k != "type"}
    if isinstance(text.get("data_items"), list):
        text["data_items"] = [{k: v for k, v in item.items() if k != "type"}
                              for item in text["data_items"] if isinstance(item, dict)]
    return text


def _catalogue_data(harness: RegistryHarness) -> list[str]:
    """What departments typed (and ids, slugs, hashes): shown as is, in any language."""
    data: list[str] = [harness.state.log.verifier_key, harness.state.log.origin]
    with harness.state.db.read() as session:
        for version in session.scalars(select(DatasetVersion)):
            data.extend(_strings(_text_fields(json.loads(version.metadata_json))))
            data.extend([version.slug, version.note or ""])
        for dataset in session.scalars(select(Dataset)):
            data.extend([dataset.id, dataset.slug, dataset.title or ""])
        for org in session.scalars(select(Organization)):
            data.extend([org.id, org.name_zh or "", org.name_en or "", org.homepage or ""])
        for user in session.scalars(select(User)):
            data.extend([user.email, user.display_name or ""])
    return sorted({" ".join(d.split()) for d in data if d and len(d) > 1}, key=len,
                  reverse=True)


def untranslated(html: str, data: list[str]) -> list[str]:
    parser = _Text()
    parser.feed(html)
    bad = []
    for text in parser.found:
        rest = " ".join(text.split())
        if rest.endswith("...") and any(v.startswith(rest[:-3].rstrip()) for v in data):
            continue  # a description cut short for a result card
        for value in data:
            if value in rest:
                rest = rest.replace(value, " ")
        words = [w for w in _LATIN_WORD.findall(rest)
                 if w not in ALLOWED and not _VERSION.fullmatch(w)]
        if words:
            bad.append(f"{words} in {text[:120]!r}")
    return bad


def _slug(client: Any, query: str) -> str:
    html = client.get("/datasets", query_string={"q": query}).get_data(as_text=True)
    return re.search(r'<h3><a href="/datasets/([^"?]+)">', html).group(1)


def _public_pages(client: Any) -> list[str]:
    bikes = _slug(client, "公共自行车")
    english = _slug(client, "Form 5500")
    return ["/", "/datasets", "/datasets?q=公交", "/datasets?theme=TRAN&sort=title",
            f"/datasets/{bikes}", f"/datasets/{bikes}/versions/1",
            f"/datasets/{bikes}/changes?from=1&to=2", f"/datasets/{english}",
            "/organizations", "/organizations/mot", "/audit", "/audit?old=abc",
            "/audit?old=1&new=5", "/audit?old=9&new=2", "/signin", "/no/such/page",
            "/datasets/no-such-entry", f"/datasets/{bikes}/changes?from=99"]


def test_no_english_is_left_on_the_chinese_public_pages(demo: RegistryHarness) -> None:
    client = demo.app.test_client()
    data = _catalogue_data(demo)
    problems = {}
    for url in _public_pages(client):
        response = client.get(url)
        assert response.status_code in (200, 404), url
        found = untranslated(response.get_data(as_text=True), data)
        if found:
            problems[url] = found
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)


@pytest.fixture
def signed_in(demo: RegistryHarness):  # type: ignore[no-untyped-def]
    client = demo.app.test_client()
    email = "mot@demo.ndr.example"
    page = client.get("/signin").get_data(as_text=True)
    response = client.post("/signin", data={"email": email, "csrf_token": csrf_of(page),
                                            "password": demo_password(demo, email)})
    assert response.status_code == 302
    return client


def test_no_english_is_left_on_the_chinese_department_pages(demo: RegistryHarness,  # type: ignore[no-untyped-def]
                                                             signed_in) -> None:
    data = _catalogue_data(demo)
    dashboard = signed_in.get("/department/").get_data(as_text=True)
    edit_url = re.search(r'href="(/department/datasets/[^"]+/edit)"', dashboard).group(1)
    new = signed_in.get("/department/datasets/new").get_data(as_text=True)
    edit = signed_in.get(edit_url).get_data(as_text=True)
    errors = signed_in.post("/department/datasets/new", data={
        "csrf_token": csrf_of(new), "distribution_count": "1", "visibility": "secret",
        "title_zh": "x" * 501, "issued": "2024-99-99", "resource_code": "a b",
        "distributions_0_byte_size": "abc", "data_items": "a | nonsense"}).get_data(as_text=True)
    damaged = signed_in.post("/department/datasets/new", data={
        "csrf_token": csrf_of(new), "distribution_count": "abc"}).get_data(as_text=True)
    dataset_id = edit_url.split("/")[-2]
    stale = {"csrf_token": csrf_of(edit), "distribution_count": "1", "visibility": "public",
             "action": "publish", "note": "改标题",
             "base_version": re.search(r'name="base_version" value="(\d+)"', edit).group(1),
             "title_zh": "改过的标题", "description_zh": "改过的说明"}
    other = demo.client.patch(f"/api/v1/datasets/{dataset_id}",
                              headers=demo.auth(demo.token("mot")),
                              json={"metadata": {"update_cycle": "irregular"},
                                    "visibility": "government"})
    assert other.status_code == 200
    conflict = signed_in.post(edit_url, data=stale)
    assert conflict.status_code == 409
    pages = {"/department/": dashboard, "new": new, "edit": edit, "errors": errors,
             "damaged": damaged, "conflict": conflict.get_data(as_text=True)}
    typed = [*data, "a | nonsense"]  # what the officer typed is shown back as typed
    problems = {name: found for name, html in pages.items()
                if (found := untranslated(html, typed))}
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)


def test_the_checker_finds_english(demo: RegistryHarness) -> None:
    """The check above can fail: an English sentence on a Chinese page is reported."""
    html = '<html lang="zh-CN"><body><p>已发布</p><p>not yet anchored</p>' \
           '<p lang="en">English on purpose</p><code>sha256</code>' \
           '<input placeholder="Search here"></body></html>'
    found = untranslated(html, [])
    assert len(found) == 2 and "anchored" in found[0] and "Search" in found[1]


VERIFY_JS = WEB / "static" / "verify.js"


def test_every_reason_the_browser_verifier_gives_is_reworded_in_chinese(demo: RegistryHarness,
                                                                        ) -> None:
    """verify.js words its failure reasons in English, once; the page's phrase table rewords
    them. Every English phrase of the table must still occur in verify.js (a reworded reason
    would silently stay English), and every literal reason in verify.js must be covered."""
    html = demo.client.get(f"/datasets/{_slug(demo.client, '公共自行车')}").get_data(
        as_text=True)
    block = re.search(r'<script type="application/json" id="verify-messages">(.*?)</script>',
                      html, re.S).group(1)
    details = json.loads(block)["details"]
    source = VERIFY_JS.read_text(encoding="utf-8")
    for english, chinese in details:
        assert english in source, f"{english!r} no longer occurs in verify.js"
        assert chinese != english and not _LATIN_WORD.search(
            re.sub(r"SHA-256|Ed25519|JSON|v2|0x00|cosignature/v1|member\.checkpoint", "",
                   chinese)), chinese  # format names stay as the specifications spell them
    literals = re.findall(r'throw new Error\("([^"]+)"', source)
    assert literals, "verify.js throws no literal reasons any more?"
    uncovered = [text for text in literals if not any(
        english.strip() and english.strip() in text for english, _ in details)]
    assert not uncovered, f"reasons without a Chinese wording: {uncovered}"
