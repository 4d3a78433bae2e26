"""The fast canonical JSON path must equal RFC 8785 (the `rfc8785` package) byte for byte."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.datasets.canonical import (
    NotCanonicalisable,
    canonical_json,
    canonical_json_reference,
)

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | text
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(text, children,
                                                                         max_size=5),
    max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_fast_path_equals_rfc8785(value) -> None:  # type: ignore[no-untyped-def]
    assert canonical_json(value) == canonical_json_reference(value)


def test_keys_beyond_the_bmp_sort_by_utf16_code_units() -> None:
    value = {"\U0001f600": 1, "\ufb01": 2}  # code points sort 😀 last; UTF-16 units first
    assert canonical_json(value) == canonical_json_reference(value)
    assert canonical_json(value).index("😀".encode()) < canonical_json(value).index("ﬁ".encode())


def test_lone_surrogates_are_refused() -> None:
    with pytest.raises(NotCanonicalisable):
        canonical_json({"title": "a\udc92b"})


def test_validated_metadata_path_equals_rfc8785() -> None:
    from registry.datasets.canonical import canonical_metadata
    from tests.catalogue.helpers import metadata

    plain = metadata()
    assert canonical_metadata(plain) == canonical_json_reference(plain)
    with_float = metadata()
    with_float["distributions"][0]["byte_size"] = 1024.0  # JSON Schema lets 1024.0 be an integer
    assert canonical_metadata(with_float) == canonical_json_reference(with_float)
    assert b'"byte_size":1024,' in canonical_metadata(with_float)
