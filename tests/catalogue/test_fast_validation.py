"""The jsonschema_rs fast paths say "valid" exactly when the reference (jsonschema) finds no error.

Publishing skips pure-Python jsonschema when jsonschema_rs says a request envelope or a
metadata record is valid. If the two ever disagreed on a bad body, its errors would be lost and
the bad body stored; these tests generate bodies, good and bad, and compare the two verdicts.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.datasets.validation import (
    _fast_metadata_check,
    _fast_request_check,
    _surely_valid,
    collect_errors,
    metadata_validator,
    request_validator,
    require_valid_request,
)
from registry.problems import Problem

pytest.importorskip("jsonschema_rs")

VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(
        ["", "public", "government", "draft", "published", "ok-slug", "Bad Slug", "-x", "a" * 130,
         "2024-01-15", "0000-01-01", "javascript:alert(1)", "https://data.example.gov.cn/x.csv"]),
    st.lists(st.just("x"), max_size=2), st.just({}))
REQUEST_KEYS = ["slug", "organization", "visibility", "state", "external_id", "note",
                "metadata", "unknown"]


@st.composite
def request_bodies(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from(REQUEST_KEYS), unique=True, max_size=5))
    body: dict[str, Any] = {key: draw(VALUES) for key in keys}
    if draw(st.booleans()):
        body["metadata"] = {}
    return body


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["create", "patch"]), body=request_bodies())
def test_request_fast_path_agrees_with_the_reference(kind: str, body: dict[str, Any]) -> None:
    reference_valid = not collect_errors(request_validator(kind), body)
    assert _surely_valid(_fast_request_check(kind), body) == reference_valid, body


METADATA_KEYS = ["title", "description", "keywords", "themes", "issued", "update_cycle",
                 "landing_page", "distributions", "unknown"]
GOOD_METADATA: dict[str, Any] = {
    "title": {"zh": "道路交通流量统计", "en": "Road traffic counts"},
    "description": {"zh": "月度统计。", "en": "Monthly counts."},
    "keywords": ["交通"], "themes": ["TRAN"], "issued": "2024-01-15", "update_cycle": "monthly",
    "distributions": [{"access_url": "https://data.example.gov.cn/t.csv", "format": "CSV",
                       "media_type": "text/csv"}],
}


@settings(max_examples=300, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(METADATA_KEYS), VALUES, max_size=3),
       removed=st.lists(st.sampled_from(METADATA_KEYS), unique=True, max_size=2))
def test_metadata_fast_path_agrees_with_the_reference(changes: dict[str, Any],
                                                       removed: list[str]) -> None:
    metadata = {k: v for k, v in {**GOOD_METADATA, **changes}.items() if k not in removed}
    reference_valid = not collect_errors(metadata_validator(), metadata)
    assert _surely_valid(_fast_metadata_check(), metadata) == reference_valid, metadata


def test_a_bad_envelope_still_gets_the_references_messages() -> None:
    with pytest.raises(Problem) as raised:
        require_valid_request("create", {"slug": "Bad Slug", "metadata": {}, "colour": 1})
    pointers = {error.pointer for error in raised.value.errors}
    assert {"/slug", "/colour"} <= pointers


def test_the_good_metadata_is_valid_for_both() -> None:
    assert _surely_valid(_fast_metadata_check(), GOOD_METADATA)
    assert not collect_errors(metadata_validator(), GOOD_METADATA)
