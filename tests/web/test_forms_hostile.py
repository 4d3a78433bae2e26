"""F10 and its kin: hostile or damaged form fields and sign-in targets never give a 500.

A department form carries hidden fields the page fills in itself (`distribution_count`,
`base_version`) and the sign-in page a `next` target from the address bar. Each is attacker-
or proxy-controlled; each must give a clear 4xx page (or a safe redirect), keep what the
officer typed, and write nothing.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from registry.auth.users import create_user
from registry.datasets.models import DatasetVersion
from registry.web.safe_redirect import department_target
from tests.conftest import RegistryHarness
from tests.web.conftest import csrf_of

PASSWORD = "correct horse battery"
DAMAGED = "表单中由页面自动填写的部分在传输中损坏"


@pytest.fixture
def officer(registry: RegistryHarness):  # type: ignore[no-untyped-def]
    registry.org("mot", name_zh="交通运输部")
    with registry.state.db.write() as session:
        create_user(session, email="officer@mot.example", display_name="张三",
                    password=PASSWORD, organization_id="mot")
    client = registry.app.test_client()
    page = client.get("/signin").get_data(as_text=True)
    client.post("/signin", data={"email": "officer@mot.example", "password": PASSWORD,
                                 "csrf_token": csrf_of(page)})
    return client


def _versions(registry: RegistryHarness) -> int:
    with registry.state.db.read() as session:
        return session.scalar(select(func.count()).select_from(DatasetVersion)) or 0


def _entry(registry: RegistryHarness) -> str:
    token = registry.token("mot")
    created = registry.client.post("/api/v1/datasets", headers=registry.auth(token), json={
        "metadata": {"title": {"zh": "港口吞吐量"}, "description": {"zh": "说明"}}})
    assert created.status_code == 201
    return created.get_json()["id"]


def _post(client, url: str, **fields: str):  # type: ignore[no-untyped-def]
    page = client.get(url).get_data(as_text=True)
    data = {"csrf_token": csrf_of(page), "visibility": "public", "action": "publish",
            "title_zh": "标题", "description_zh": "说明"}
    base = re.search(r'name="base_version" value="(\d+)"', page)
    if base:
        data["base_version"] = base.group(1)
    data.update(fields)
    return client.post(url, data=data)


@pytest.mark.parametrize("count", ["abc", "1e3", "²", "-1", "9" * 5000, " 2"])
def test_a_damaged_distribution_count_is_a_clear_400(officer, registry, count: str):  # type: ignore[no-untyped-def]
    before = _versions(registry)
    response = _post(officer, "/department/datasets/new", distribution_count=count,
                     title_zh="铁路客运量", distributions_1_access_url="https://example.gov.cn/a")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert DAMAGED in html
    assert 'value="铁路客运量"' in html                     # what was typed is kept
    assert 'value="https://example.gov.cn/a"' in html       # even the second block
    assert _versions(registry) == before


@pytest.mark.parametrize("base", ["abc", "1e3", "²", "", "0", "99", "9" * 5000])
def test_a_damaged_base_version_is_a_clear_400(officer, registry, base: str):  # type: ignore[no-untyped-def]
    dataset_id = _entry(registry)
    before = _versions(registry)
    response = _post(officer, f"/department/datasets/{dataset_id}/edit", base_version=base,
                     title_zh="港口吞吐量（新）")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert DAMAGED in html and 'value="港口吞吐量（新）"' in html
    assert _versions(registry) == before


@pytest.mark.parametrize("base", ["abc", "1e3", ""])
def test_withdraw_with_a_damaged_base_version_redirects_with_a_message(officer, registry,  # type: ignore[no-untyped-def]
                                                                        base: str):
    dataset_id = _entry(registry)
    before = _versions(registry)
    page = officer.get(f"/department/datasets/{dataset_id}/edit").get_data(as_text=True)
    response = officer.post(f"/department/datasets/{dataset_id}/withdraw",
                            data={"csrf_token": csrf_of(page), "base_version": base})
    assert response.status_code == 302
    assert DAMAGED in officer.get(response.headers["Location"]).get_data(as_text=True)
    assert _versions(registry) == before


def test_a_byte_size_of_unicode_digits_is_a_field_error(officer, registry):  # type: ignore[no-untyped-def]
    response = _post(officer, "/department/datasets/new", distribution_count="1",
                     distributions_0_access_url="https://example.gov.cn/a",
                     distributions_0_byte_size="²³")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'id="distributions_0_byte_size-error">请以字节为单位填写整数大小', html)


@pytest.mark.parametrize("visibility", ["secret", "", "public\r\nX: y"])
def test_an_unknown_visibility_is_named_beside_its_field(officer, registry, visibility: str):  # type: ignore[no-untyped-def]
    response = _post(officer, "/department/datasets/new", distribution_count="1",
                     visibility=visibility)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="visibility-error">请从列表中选择一项' in html


@pytest.mark.parametrize("target", ["%0D%0A", "/department%0D%0ASet-Cookie:x=1",
                                    "/department/%0D%0A", "//evil.example/department",
                                    "/department\\\\evil", "https://evil.example/department",
                                    "/departmentevil", "/department/../signin",
                                    "/department//evil.example", "/department%7F"])
def test_signin_next_never_splits_headers_or_leaves_the_site(registry, target: str):  # type: ignore[no-untyped-def]
    registry.org("mot")
    with registry.state.db.write() as session:
        create_user(session, email="a@mot.example", display_name="A", password=PASSWORD,
                    organization_id="mot")
    client = registry.app.test_client()
    page = client.get(f"/signin?next={target}")
    assert page.status_code == 200
    response = client.post(f"/signin?next={target}", data={
        "email": "a@mot.example", "password": PASSWORD,
        "csrf_token": csrf_of(page.get_data(as_text=True))})
    assert response.status_code == 302
    assert response.headers["Location"] == "/department/"


def test_signin_next_inside_the_department_pages_is_followed(registry):  # type: ignore[no-untyped-def]
    registry.org("mot")
    with registry.state.db.write() as session:
        create_user(session, email="a@mot.example", display_name="A", password=PASSWORD,
                    organization_id="mot")
    client = registry.app.test_client()
    page = client.get("/signin?next=/department/datasets/new").get_data(as_text=True)
    response = client.post("/signin?next=/department/datasets/new", data={
        "email": "a@mot.example", "password": PASSWORD, "csrf_token": csrf_of(page)})
    assert response.headers["Location"] == "/department/datasets/new"


@pytest.mark.parametrize("raw,expected", [
    ("/department/", "/department/"), ("/department", "/department"),
    ("/department/datasets/x/edit?lang=en", "/department/datasets/x/edit?lang=en"),
    ("/department\r\n", None), ("/department/\t", None), ("//x", None), ("/x", None),
    ("javascript:alert(1)", None), ("/department/#frag", None), ("/department/" + "a" * 3000, None),
])
def test_department_target(raw: str, expected: str | None) -> None:
    assert department_target(raw) == expected


@pytest.mark.parametrize("query", ["old=abc", "old=²", "old=1&new=²", "old=" + "9" * 5000,
                                   "old=1&new=1e3", "old=5&new=2", "old=-1"])
def test_audit_consistency_inputs_never_500(demo, query: str):  # type: ignore[no-untyped-def]
    response = demo.app.test_client().get(f"/audit?{query}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="consistency-result"' in html and "未核验" in html


@pytest.mark.parametrize("query", ["from=²", "to=1e3", "from=" + "9" * 5000, "from=abc"])
def test_diff_version_arguments_never_500(demo, query: str):  # type: ignore[no-untyped-def]
    client = demo.app.test_client()
    slug = re.search(r'href="/datasets/([^"/?]+)"', client.get("/datasets").get_data(
        as_text=True)).group(1)
    response = client.get(f"/datasets/{slug}/changes?{query}")
    assert response.status_code == 404
    assert "此地址没有内容" in response.get_data(as_text=True)


@pytest.mark.parametrize("lang,words", [("zh", "此地址没有内容"), ("en", "There is nothing")])
def test_an_unknown_address_gets_the_portal_page_in_the_readers_language(demo, lang: str,  # type: ignore[no-untyped-def]
                                                                         words: str):
    response = demo.app.test_client().get(f"/no/such/page?lang={lang}")
    html = response.get_data(as_text=True)
    assert response.status_code == 404 and words in html
    assert "The requested URL was not found" not in html


def test_unknown_api_addresses_keep_problem_json(demo):  # type: ignore[no-untyped-def]
    response = demo.app.test_client().get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize("fields,field,words", [
    ({"title_zh": "标题\x00"}, "title_zh", "无法保存的字符"),
    ({"keywords": "、".join(f"词{i}" for i in range(101))}, "keywords", "关键词最多 100 个"),
    ({"keywords": "长" * 101}, "keywords", "每个关键词最多 100 个字符"),
    ({"note": "备注" * 1001}, "note", "最多 2000 个字符"),
    ({"themes": "NOPE"}, "themes", "请从列表中选择一项"),
    ({"distributions_0_access_url": "https://example.gov.cn/a",
      "distributions_0_byte_size": "9" * 5000}, "distributions_0_byte_size", "整数大小"),
])
def test_every_other_field_fails_beside_itself(officer, registry, fields: dict[str, str],  # type: ignore[no-untyped-def]
                                               field: str, words: str):
    before = _versions(registry)
    response = _post(officer, "/department/datasets/new", distribution_count="1", **fields)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    match = re.search(rf'id="{field}-error">([^<]*)<', html)
    assert match and words in match.group(1), (field, match and match.group(1))
    assert _versions(registry) == before


@pytest.mark.parametrize("email,password", [("a\x00b@mot.example", "x" * 12),
                                            ("a" * 5000 + "@x.example", "x" * 12),
                                            ("a@mot.example", "\x00" * 3)])
def test_hostile_sign_in_fields_are_a_plain_refusal(registry, email: str, password: str):  # type: ignore[no-untyped-def]
    registry.org("mot")
    client = registry.app.test_client()
    page = client.get("/signin").get_data(as_text=True)
    response = client.post("/signin", data={"email": email, "password": password,
                                            "csrf_token": csrf_of(page)})
    assert response.status_code == 401
    assert "电子邮箱或密码不正确" in response.get_data(as_text=True)
