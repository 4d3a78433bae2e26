"""Officers never lose work, and every message they see is written for people.

- An edit of a version that is no longer the latest is not saved over it and not silently
  rebased: a conflict page shows both changes side by side and a form with the officer's change
  re-applied to the newest version, which they save themselves.
- Validation errors appear beside their field, in the reader's language, without regexes,
  JSON Pointers or internal field names.
"""

from __future__ import annotations

import re

import pytest

from registry.auth.users import create_user
from tests.conftest import RegistryHarness
from tests.web.conftest import csrf_of

PASSWORD = "correct horse battery"


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


def _fields(html: str) -> dict[str, str]:
    """Every input's and textarea's value and every selected option, as a browser sends them."""
    from html import unescape

    form = html[html.index('class="entry-form"'):]
    form = form[:form.index("</form>")]
    data = {m.group(1): unescape(m.group(2)) for m in re.finditer(
        r'<input type="(?:text|url|email|hidden)" (?:id="[^"]*" )?name="([^"]+)" value="([^"]*)"',
        form)}
    data.update({m.group(1): unescape(m.group(2)) for m in re.finditer(
        r'<textarea id="[^"]*" name="([^"]+)"[^>]*>([^<]*)</textarea>', form)})
    for m in re.finditer(r'<select id="[^"]*" name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', m.group(2))
        data[m.group(1)] = chosen.group(1) if chosen else ""
    data["csrf_token"] = csrf_of(html)
    return data


def _create(registry: RegistryHarness) -> tuple[str, str]:
    token = registry.token("mot")
    created = registry.client.post("/api/v1/datasets", headers=registry.auth(token), json={
        "metadata": {"title": {"zh": "港口吞吐量"}, "description": {"zh": "原始说明"},
                     "update_cycle": "monthly", "keywords": ["港口"]}})
    return created.get_json()["id"], token


def test_a_stale_edit_shows_both_changes_and_is_reapplied_only_by_the_officer(officer,  # type: ignore[no-untyped-def]
                                                                              registry):
    dataset_id, token = _create(registry)
    url = f"/department/datasets/{dataset_id}/edit"
    opened = officer.get(url).get_data(as_text=True)          # the officer opens version 1
    other = registry.client.patch(f"/api/v1/datasets/{dataset_id}", headers=registry.auth(token),
                                  json={"metadata": {"update_cycle": "weekly",
                                                     "description": {"zh": "他人修改的说明"}}})
    assert other.status_code == 200 and other.get_json()["version"] == 2
    data = _fields(opened)
    assert data["base_version"] == "1"
    data.update(title_zh="港口货物吞吐量", description_zh="我的说明", action="publish")
    response = officer.post(url, data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    body = registry.client.get(f"/api/v1/datasets/{dataset_id}").get_json()
    assert body["version"] == 2                                 # nothing saved over version 2
    assert body["metadata"]["title"] == {"zh": "港口吞吐量"}
    yours = html[html.index('id="your-change"'):html.index('id="their-change"')]
    theirs = html[html.index('id="their-change"'):html.index('id="reapply-title"')]
    assert "港口货物吞吐量" in yours and "我的说明" in yours and "每周" not in yours
    assert "每月" in theirs and "每周" in theirs and "他人修改的说明" in theirs
    assert "双方都改了" in yours and "双方都改了" in theirs      # the description, by both
    assert "weekly" not in yours + theirs and "/metadata" not in html
    # The re-apply form: version 2 with the officer's change on top, based on version 2.
    again = _fields(html)
    assert again["base_version"] == "2"
    assert again["title_zh"] == "港口货物吞吐量" and again["description_zh"] == "我的说明"
    assert again["update_cycle"] == "weekly"                    # the other change is kept
    saved = officer.post(url, data={**again, "action": "publish"})
    assert saved.status_code == 302
    body = registry.client.get(f"/api/v1/datasets/{dataset_id}").get_json()
    assert body["version"] == 3
    assert body["metadata"]["title"] == {"zh": "港口货物吞吐量"}
    assert body["metadata"]["update_cycle"] == "weekly"


def test_a_stale_withdraw_withdraws_nothing_and_says_why(officer, registry):  # type: ignore[no-untyped-def]
    dataset_id, token = _create(registry)
    page = officer.get(f"/department/datasets/{dataset_id}/edit").get_data(as_text=True)
    registry.client.patch(f"/api/v1/datasets/{dataset_id}", headers=registry.auth(token),
                          json={"metadata": {"update_cycle": "weekly"}})
    response = officer.post(f"/department/datasets/{dataset_id}/withdraw",
                            data={"csrf_token": csrf_of(page), "base_version": "1"})
    assert response.status_code == 302
    assert "因此未撤回" in officer.get(response.headers["Location"]).get_data(as_text=True)
    assert registry.client.get(f"/api/v1/datasets/{dataset_id}").get_json()["state"] == \
        "published"


INTERNAL = re.compile(r"/metadata|\^\[|\{1,|\$\)|must be of type|does not match|^is required|"
                      r"should be non-empty|' is too long|title_zh|resource_code|"
                      r"distributions_\d|contact_point")


@pytest.mark.parametrize("lang,expected", [
    ("zh", {"resource_code": "只能使用字母、数字", "issued": "请按“年-月-日”填写日期",
            "landing_page": "以 https:// 或 http:// 开头", "contact_point_email": "电子邮箱地址",
            "sharing_conditions": "请说明共享条件", "distributions_0_byte_size": "整数大小",
            "distributions_0_checksum": "64 位十六进制", "distributions_0_format": "大写字母",
            "title_zh": "最多 500 个字符", "data_items": "第 1 行："}),
    ("en", {"resource_code": "Use only letters, digits", "issued": "YYYY-MM-DD",
            "landing_page": "starts with https://", "contact_point_email": "e-mail address",
            "sharing_conditions": "on what conditions", "distributions_0_byte_size": "whole number",
            "distributions_0_checksum": "64 hexadecimal", "distributions_0_format": "capitals",
            "title_zh": "at most 500 characters", "data_items": "Line 1:"}),
])
def test_each_error_is_a_sentence_beside_its_field(officer, registry, lang: str,  # type: ignore[no-untyped-def]
                                                   expected: dict[str, str]):
    url = f"/department/datasets/new?lang={lang}"
    page = officer.get(url).get_data(as_text=True)
    response = officer.post(url, data={
        "csrf_token": csrf_of(page), "distribution_count": "1", "visibility": "public",
        "action": "publish", "title_zh": "长" * 501, "description_zh": "说明",
        "resource_code": "有 空格", "issued": "2024-13-01", "landing_page": "not a url",
        "contact_point_email": "nobody", "sharing_type": "conditional",
        "distributions_0_access_url": "https://example.gov.cn/a",
        "distributions_0_byte_size": "12 KB", "distributions_0_checksum": "abc",
        "distributions_0_format": "c s v", "data_items": "名称 | nonsense"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    for field, words in expected.items():
        match = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', html)
        assert match, field
        assert words in match.group(1), (field, match.group(1))
        assert not INTERNAL.search(match.group(1)), (field, match.group(1))
    summary = html[html.index('id="error-summary"'):html.index("</div>",
                                                               html.index('id="error-summary"'))]
    visible = re.sub(r"<[^>]+>", "", summary)
    assert not INTERNAL.search(visible), visible
    label = "资源文件 1：大小（字节）" if lang == "zh" else "Distribution 1: Size in bytes"
    assert label in visible
    links = re.findall(r'<a href="#([a-z_0-9]+)">', summary)       # top to bottom, as the form
    assert links.index("title_zh") < links.index("resource_code") < links.index("issued") \
        < links.index("distributions_0_byte_size") < links.index("distributions_0_checksum")
