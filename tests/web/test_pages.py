"""The portal's pages through the Flask test client: content, language, safety, no-JS use."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

from tests.conftest import RegistryHarness
from tests.web.conftest import csrf_of


def _slug_for(harness: RegistryHarness, query: str) -> str:
    html = harness.client.get("/datasets", query_string={"q": query}).get_data(as_text=True)
    match = re.search(r'<h3><a href="/datasets/([^"?]+)">', html)
    assert match, f"no result for {query!r}"
    return match.group(1)


def test_home_is_chinese_by_default_with_counts_themes_and_departments(demo: RegistryHarness):
    response = demo.client.get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<html lang="zh-CN">' in html
    assert "国家数据目录" in html and "最近更新" in html
    assert re.search(r"<strong>45</strong> 个数据集", html)
    assert "按主题浏览" in html and 'href="/datasets?theme=TRAN"' in html
    assert 'href="/organizations/beijing-transport"' in html


def test_language_switch_is_remembered_in_the_session(demo: RegistryHarness):
    client = demo.app.test_client()
    english = client.get("/?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in english and "Recently updated" in english
    assert '<html lang="en">' in client.get("/datasets").get_data(as_text=True)
    back = client.get("/organizations?lang=zh").get_data(as_text=True)
    assert '<html lang="zh-CN">' in back and "部门" in back


def test_security_headers_on_pages(demo: RegistryHarness):
    response = demo.client.get("/")
    csp = response.headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "object-src 'none'",
                      "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    html = response.get_data(as_text=True)
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert not re.search(r"<script(?![^>]*\b(src=|type=\"application/(ld\+)?json\"))", html)


def test_results_have_marked_snippets_facet_links_and_counts(demo: RegistryHarness):
    html = demo.client.get("/datasets", query_string={"q": "公交"}).get_data(as_text=True)
    assert "找到 1 个数据集" in html
    assert "<mark>公交</mark>" in html
    assert re.search(r'href="/datasets\?q=%E5%85%AC%E4%BA%A4&amp;theme=TRAN"', html)
    filtered = demo.client.get("/datasets?publisher=beijing").get_data(as_text=True)
    assert "找到 6 个数据集" in filtered
    assert 'aria-current="true"' in filtered  # the active filter is marked and removable


def test_cursor_pagination_without_javascript(demo: RegistryHarness):
    client = demo.app.test_client()  # its own session: the language choice sticks
    first = client.get("/datasets?lang=en").get_data(as_text=True)
    next_link = re.search(r'<a href="([^"]+)" rel="next">', first)
    assert next_link
    second = client.get(next_link.group(1).replace("&amp;", "&")).get_data(as_text=True)
    titles = lambda page: set(re.findall(r'<h3><a href="/datasets/([^"]+)">', page))  # noqa: E731
    assert titles(first) and titles(second) and not titles(first) & titles(second)


def test_dataset_page_shows_national_fields_items_files_and_provenance(demo: RegistryHarness):
    slug = _slug_for(demo, "公共自行车")
    html = demo.client.get(f"/datasets/{slug}").get_data(as_text=True)
    assert "11110000000021093K/2024-00101" in html          # 信息资源代码
    assert "交通 › 城市交通 › 公共自行车" in html                 # 资源分类
    assert "无条件共享" in html and "无条件开放" in html and "每周" in html
    assert "<td>锁车器数量</td>" in html                        # 信息项
    checksum = hashlib_of("bj-bike-stations.csv")
    assert checksum in html
    assert re.search(r"<td data-label=\"日志叶子\">#\d+</td>", html)  # leaf index
    assert "尚未锚定" in html                                   # no anchor yet, shown gracefully
    assert 'data-proof-url="/api/v1/datasets/' in html
    assert 'href="/api/v1/datasets/' in html


def hashlib_of(name: str) -> str:
    import hashlib

    from registry.demo import FILES_DIR
    return hashlib.sha256((FILES_DIR / name).read_bytes()).hexdigest()


def test_json_ld_is_a_schema_org_dataset(demo: RegistryHarness):
    slug = _slug_for(demo, "医疗机构")
    html = demo.client.get(f"/datasets/{slug}").get_data(as_text=True)
    block = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert block
    data = json.loads(block.group(1))
    assert data["@type"] == "Dataset" and data["name"] == "北京市医疗机构名录"
    assert data["distribution"][0]["@type"] == "DataDownload"


def test_version_diff_names_each_changed_field(demo: RegistryHarness):
    slug = _slug_for(demo, "公共自行车")
    html = demo.client.get(f"/datasets/{slug}/changes?from=1&to=2").get_data(as_text=True)
    assert "第 1 版到第 2 版的变更" in html
    assert "更新周期" in html and "<pre>每月</pre>" in html and "<pre>每周</pre>" in html
    assert "monthly" not in html and "/update_cycle" not in html  # no raw codes or pointers
    assert "共享单车" in html
    assert demo.client.get(f"/datasets/{slug}/changes?from=9").status_code == 404


def test_organisation_pages(demo: RegistryHarness):
    html = demo.client.get("/organizations/beijing").get_data(as_text=True)
    assert "北京市交通委员会" in html and "6 个数据集（含下级部门）" in html
    assert demo.client.get("/organizations/nope").status_code == 404


def test_audit_page_shows_checkpoint_key_and_checks_consistency(demo: RegistryHarness):
    html = demo.client.get("/audit").get_data(as_text=True)
    assert "registry.localhost/log" in html and demo.state.log.verifier_key in html
    size = int(re.search(r'<dd id="tree-size">(\d+)</dd>', html).group(1))
    assert size == 46  # 15 + 1 update + 30
    checked = demo.client.get(f"/audit?old=5&new={size}").get_data(as_text=True)
    assert 'class="result ok"' in checked
    wrong = demo.client.get(f"/audit?old=5&new={size + 1}").get_data(as_text=True)
    assert 'class="result failed"' in wrong


def test_demo_file_is_served_and_matches_its_checksum(demo: RegistryHarness):
    import hashlib
    response = demo.client.get("/demo-files/nbs-cpi-monthly.csv")
    assert response.status_code == 200
    assert hashlib.sha256(response.data).hexdigest() == hashlib_of("nbs-cpi-monthly.csv")
    assert demo.client.get("/demo-files/../demo.py").status_code == 404


def test_secret_key_and_demo_credentials_are_0600(demo: RegistryHarness):
    settings = demo.state.settings
    for path in (Path(settings.secret_key_file), Path(settings.var_dir) / "demo-credentials.txt"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_signin_page_has_labels_and_csrf(demo: RegistryHarness):
    html = demo.client.get("/signin").get_data(as_text=True)
    assert '<label for="email">' in html and '<label for="password">' in html
    csrf_of(html)
    refused = demo.app.test_client().post("/signin", data={"email": "x@y.z", "password": "p"})
    assert refused.status_code == 400
