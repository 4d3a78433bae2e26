from __future__ import annotations

from search.analysis import cjk_bigrams, index_tokens, query_terms
from search.highlight import highlight


def test_chinese_text_is_indexed_as_overlapping_bigrams_per_run() -> None:
    assert index_tokens("交通运输，医疗") == ["交通", "通运", "运输", "输", "医疗", "疗"]


def test_digits_next_to_chinese_are_separate_tokens() -> None:
    assert index_tokens("2021年南宁市") == ["2021", "年南", "南宁", "宁市", "市"]


def test_english_is_lowercased_stemmed_and_stopwords_dropped() -> None:
    assert index_tokens("The Routes of Transportation") == ["rout", "transport"]


def test_query_words_become_bigram_phrases_and_last_english_word_a_prefix() -> None:
    terms = query_terms("交通运输 transp")
    phrases = [(t.tokens, t.prefix) for t in terms]
    assert (tuple(cjk_bigrams("交通运输")), False) in phrases or (("交通",), False) in phrases
    assert phrases[-1] == (("transp",), True)


def test_trailing_space_means_the_last_word_is_complete() -> None:
    assert query_terms("bus ")[-1].prefix is False


def test_highlight_escapes_everything_but_the_marks() -> None:
    snippet = highlight("<script>交通</script> data", query_terms("交通"))
    assert snippet == "&lt;script&gt;<mark>交通</mark>&lt;/script&gt; data"


def test_highlight_marks_english_by_stem() -> None:
    snippet = highlight("Bus routes in Beijing", query_terms("route "))
    assert snippet == "Bus <mark>routes</mark> in Beijing"
