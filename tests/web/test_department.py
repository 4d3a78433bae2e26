"""Department officers in the portal: sign in, publish, errors beside fields, drafts, XSS."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from registry.auth.users import create_user
from registry.datasets.models import DatasetVersion
from tests.conftest import RegistryHarness
from tests.web.conftest import csrf_of

PASSWORD = "correct horse battery"
XSS = '<script>alert(1)</script><img src=x onerror="alert(2)"> [x](javascript:alert(3))'


@pytest.fixture
def officer(registry: RegistryHarness):  # type: ignore[no-untyped-def]
    registry.org("mot", name_zh="交通运输部")
    with registry.state.db.write() as session:
        create_user(session, email="officer@mot.example", display_name="张三",
                    password=PASSWORD, organization_id="mot")
    client = registry.app.test_client()
    page = client.get("/signin").get_data(as_text=True)
    response = client.post("/signin", data={"email": "officer@mot.example", "password": PASSWORD,
                                            "csrf_token": csrf_of(page)})
    assert response.status_code == 302 and response.headers["Location"].endswith("/department/")
    return client


def _form(client, url: str, **fields: str):  # type: ignore[no-untyped-def]
    page = client.get(url).get_data(as_text=True)
    data = {"csrf_token": csrf_of(page), "distribution_count": "1", "visibility": "public"}
    base = re.search(r'name="base_version" value="(\d+)"', page)
    if base:
        data["base_version"] = base.group(1)
    data.update(fields)
    return client.post(url, data=data)


def _versions(registry: RegistryHarness) -> int:
    with registry.state.db.read() as session:
        return session.scalar(select(func.count()).select_from(DatasetVersion)) or 0


def test_wrong_password_is_refused(registry: RegistryHarness):
    registry.org("mot")
    client = registry.app.test_client()
    page = client.get("/signin").get_data(as_text=True)
    response = client.post("/signin", data={"email": "nobody@x.example", "password": "whatever1234",
                                            "csrf_token": csrf_of(page)})
    assert response.status_code == 401 and 'role="alert"' in response.get_data(as_text=True)
    assert client.get("/department/").status_code == 302


def test_session_cookie_is_httponly_and_lax(officer):  # type: ignore[no-untyped-def]
    cookie = officer.get_cookie("ndr_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"


def test_publish_from_the_form_is_searchable(officer, registry: RegistryHarness):  # type: ignore[no-untyped-def]
    response = _form(officer, "/department/datasets/new", title_zh="全国铁路客运量月度统计",
                     description_zh="铁路客运量。", keywords="铁路、客运", themes="TRAN",
                     sharing_type="unconditional", update_cycle="monthly",
                     data_items="统计月份 | date\n客运量 | integer | | 万人",
                     distributions_0_access_url="https://example.gov.cn/rail.csv",
                     distributions_0_format="csv", action="publish")
    assert response.status_code == 302
    page = officer.get(response.headers["Location"]).get_data(as_text=True)
    assert "全国铁路客运量月度统计" in page and "<td>客运量</td>" in page
    assert "已发布为第 1 版" in page
    results = registry.app.test_client().get("/datasets?q=铁路").get_data(as_text=True)
    assert "找到 1 个数据集" in results


def test_errors_are_shown_beside_their_fields_and_nothing_is_written(officer, registry):  # type: ignore[no-untyped-def]
    before = _versions(registry)
    response = _form(officer, "/department/datasets/new", title_en="Rail",
                     description_zh="说明", resource_code="有 空格",
                     sharing_type="conditional", distributions_0_access_url="not a url",
                     distributions_0_checksum="abc", data_items="名称 | nonsense",
                     action="publish")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    for field in ("resource_code", "sharing_conditions", "distributions_0_checksum",
                  "data_items"):
        assert f'id="{field}-error"' in html, field
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', html), field
    assert 'value="Rail"' in html and 'value="有 空格"' in html   # the input is kept
    assert "第 1 行：" in html                                      # data item line named
    assert _versions(registry) == before


def test_draft_then_publish_then_edit_and_withdraw(officer, registry):  # type: ignore[no-untyped-def]
    created = _form(officer, "/department/datasets/new", title_zh="草稿条目",
                    description_zh="尚未发布", action="draft")
    edit_url = created.headers["Location"]
    assert "/edit" in edit_url
    anonymous = registry.app.test_client()
    assert "找到 0 个数据集" in anonymous.get("/datasets?q=草稿条目").get_data(as_text=True)
    dashboard = officer.get("/department/").get_data(as_text=True)
    assert "草稿条目" in dashboard and "草稿" in dashboard
    published = _form(officer, edit_url, title_zh="草稿条目", description_zh="已发布",
                      action="publish")
    assert published.status_code == 302
    assert "找到 1 个数据集" in anonymous.get("/datasets?q=草稿条目").get_data(as_text=True)
    dataset_id = edit_url.split("/")[-2]
    page = officer.get(edit_url).get_data(as_text=True)
    withdrawn = officer.post(f"/department/datasets/{dataset_id}/withdraw",
                             data={"csrf_token": csrf_of(page), "note": "停止维护",
                                   "base_version": re.search(r'name="base_version" value="(\d+)"',
                                                             page).group(1)})
    assert withdrawn.status_code == 302
    assert "找到 0 个数据集" in anonymous.get("/datasets?q=草稿条目").get_data(as_text=True)


def test_edit_keeps_fields_the_form_does_not_show(officer, registry):  # type: ignore[no-untyped-def]
    token = registry.token("mot")
    created = registry.client.post("/api/v1/datasets", headers=registry.auth(token), json={
        "metadata": {"title": {"zh": "港口"}, "description": {"zh": "说明"},
                     "conforms_to": ["https://example.org/std"],
                     "contact_point": {"name": "王五", "telephone": "010-1234"}}})
    dataset_id = created.get_json()["id"]
    response = _form(officer, f"/department/datasets/{dataset_id}/edit", title_zh="港口吞吐量",
                     description_zh="说明", contact_point_name="王五", action="publish")
    assert response.status_code == 302
    body = registry.client.get(f"/api/v1/datasets/{dataset_id}").get_json()
    assert body["version"] == 2 and body["metadata"]["title"] == {"zh": "港口吞吐量"}
    assert body["metadata"]["conforms_to"] == ["https://example.org/std"]
    assert body["metadata"]["contact_point"] == {"name": "王五", "telephone": "010-1234"}


def test_a_script_in_a_description_is_never_rendered(officer, registry):  # type: ignore[no-untyped-def]
    response = _form(officer, "/department/datasets/new", title_zh="XSS </script> 测试",
                     description_zh=XSS, action="publish")
    html = officer.get(response.headers["Location"]).get_data(as_text=True)
    block = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S).group(1)
    assert "<" not in block and "\\u003c/script\\u003e" in block  # data, and cannot end early
    page = html.replace(block, "")
    assert "<script>alert" not in page and "<img" not in page and "href=\"javascript:" not in page
    prose = re.search(r'<div class="prose">(.*?)</div>', page, re.S).group(1)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in prose  # shown as text, not run
    results = registry.app.test_client().get("/datasets?q=XSS").get_data(as_text=True)
    assert "<script>alert" not in results and "&lt;/script&gt;" in results


def test_signed_out_after_signout(officer):  # type: ignore[no-untyped-def]
    page = officer.get("/department/").get_data(as_text=True)
    assert officer.post("/signout", data={"csrf_token": csrf_of(page)}).status_code == 302
    assert officer.get("/department/").status_code == 302
