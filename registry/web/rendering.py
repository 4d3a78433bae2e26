"""Turning stored text into HTML safely: Markdown descriptions, search highlights, JSON-LD.

Everything a department typed is untrusted. Markdown goes through markdown-it-py with raw HTML
disabled and then nh3 (an allow-list sanitiser) — two independent layers, so a mistake in one
does not become an XSS. Search snippets arrive already escaped with `<mark>` tags; they are
re-sanitised with nh3 allowing `mark` only, rather than trusted.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

from registry.datasets.field_rules import safe_link

MARKDOWN_TAGS = {"p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
                 "a", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td",
                 "hr", "del"}
_URL_SCHEMES = {"http", "https", "mailto"}


@cache
def _markdown() -> MarkdownIt:
    # "js-default": CommonMark without raw HTML, plus tables and strikethrough.
    return MarkdownIt("js-default", {"html": False, "linkify": False, "typographer": False})


def render_markdown(text: str | None) -> Markup:
    """Markdown → HTML, sanitised; headings are shifted below the page's own h1/h2."""
    if not text:
        return Markup("")
    html = _markdown().render(text)
    for level in range(6, 0, -1):  # keep heading order: a description starts at h3
        new = min(level + 2, 6)
        html = html.replace(f"<h{level}>", f"<h{new}>").replace(f"</h{level}>", f"</h{new}>")
    clean = nh3.clean(html, tags=MARKDOWN_TAGS, attributes={"a": {"href", "title"}},
                      url_schemes=_URL_SCHEMES, link_rel="nofollow noopener noreferrer")
    return Markup(clean)  # noqa: S704 - nh3 output, allow-listed tags only


def safe_highlight(snippet: str | None) -> Markup:
    """A search snippet with nothing but text and <mark> left in it."""
    if not snippet:
        return Markup("")
    return Markup(nh3.clean(snippet, tags={"mark"}, attributes={}))  # noqa: S704


def json_ld(data: dict[str, Any]) -> Markup:
    """JSON for a <script type="application/ld+json"> block.

    `<`, `>` and `&` are written as \\u escapes, so no `</script>` or `<!--` can ever end
    the block early, whatever a title contains; the JSON value is unchanged.
    """
    text = json.dumps(data, ensure_ascii=False, sort_keys=True)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(text)  # noqa: S704 - escaped above


def localized(value: Any, language: str) -> str:
    """One string of a {"zh","en"} object: the reader's language first, then the other."""
    if not isinstance(value, dict):
        return "" if value is None else str(value)
    other = "en" if language == "zh" else "zh"
    return value.get(language) or value.get(other) or ""


def schema_org_dataset(metadata: dict[str, Any], *, url: str, json_url: str,
                       publisher: str | None, version: int) -> dict[str, Any]:
    """schema.org/Dataset for search engines (Google Dataset Search reads this)."""
    title = metadata.get("title") or {}
    description = metadata.get("description") or {}
    data: dict[str, Any] = {
        "@context": "https://schema.org/", "@type": "Dataset",
        "name": title.get("zh") or title.get("en"),
        "alternateName": title.get("en") if title.get("zh") else None,
        "description": description.get("zh") or description.get("en"),
        "url": url, "sameAs": json_url, "version": str(version),
        "identifier": metadata.get("resource_code") or metadata.get("identifier"),
        "keywords": metadata.get("keywords") or None,
        "license": metadata.get("license"),
        "datePublished": metadata.get("issued"), "dateModified": metadata.get("modified"),
        "inLanguage": metadata.get("language") or None,
    }
    if publisher:
        data["creator"] = {"@type": "Organization", "name": publisher}
    spatial = metadata.get("spatial") or {}
    if spatial.get("name"):
        data["spatialCoverage"] = spatial["name"]
    temporal = metadata.get("temporal") or {}
    if temporal.get("start"):
        data["temporalCoverage"] = f"{temporal['start']}/{temporal.get('end', '..')}"
    data["distribution"] = [
        {"@type": "DataDownload",
         "contentUrl": safe_link(d.get("download_url")) or safe_link(d.get("access_url")),
         "encodingFormat": d.get("media_type") or d.get("format"), "name": d.get("title"),
         "contentSize": d.get("byte_size")}
        for d in metadata.get("distributions", [])] or None
    return {k: v for k, v in data.items() if v is not None}
