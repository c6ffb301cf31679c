"""The query language: what parses, what each error says and where, and the round trip."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from jointspace.query.parser import ParsedQuery, QueryLimits, parse
from jointspace.query.syntax import Scaled, Sum, Term

from jointspace.errors import QueryError
from jointspace.records import Filters
from tests.query.query_geometry import EXAMPLES


def word(text: str) -> Term:
    return Term("word", text)


@pytest.mark.parametrize("expression", EXAMPLES)
def test_examples_parse_and_round_trip(expression: str) -> None:
    parsed = parse(expression)
    assert parsed.expression is not None
    assert parse(parsed.to_text()) == parsed


def test_structure_of_a_mixed_expression() -> None:
    parsed = parse("2*(beach + #Sun) - car [img:7] \"red  bike\" city:London,Sydney tag:#beach")
    assert parsed.expression == Sum(
        (
            (1, Scaled(2.0, Sum(((1, word("beach")), (1, word("sun")))))),
            (-1, word("car")),
            (1, Term("image", "7")),
            (1, Term("phrase", "red  bike")),
        )
    )
    assert parsed.filters == Filters(cities=("london", "sydney"), hashtags=("beach",))


def test_image_reference_forms_are_the_same() -> None:
    assert parse("[IMG_42]") == parse("[img:42]") == parse("[ img : 42 ]")


def test_positions_point_at_terms() -> None:
    terms = parse("people + 0.5*park -[img:3]").terms()
    assert [(t.text, t.position) for t in terms] == [("people", 0), ("park", 13), ("3", 19)]


def test_filters_only_and_dates() -> None:
    parsed = parse("after:2018-01-01 before:2019-06-30T12:00 source:insta,\"my feed\"")
    assert parsed.expression is None
    assert parsed.filters == Filters(
        after=datetime(2018, 1, 1), before=datetime(2019, 6, 30, 12), sources=("insta", "my feed")
    )
    assert parse(parsed.to_text()) == parsed


def test_a_bare_number_is_a_word_and_a_weight_before_star() -> None:
    assert parse("1984") == ParsedQuery(word("1984"))
    assert parse("3*1984") == ParsedQuery(Scaled(3.0, word("1984")))


@pytest.mark.parametrize(
    ("expression", "position", "fragment"),
    [
        ("beach+", 6, "expected a word"),
        ("beach++sun", 6, "expected a word"),
        ("(beach+sun", 10, "')'"),
        ("beach)", 5, "without a matching '('"),
        ("()", 1, "empty parentheses"),
        ('beach "at sunset', 6, "unterminated"),
        ('""', 0, "empty quoted phrase"),
        ("[img:]+park", 0, "no id"),
        ("[picture:3]", 0, "[img:42]"),
        ("colour:red", 0, "unknown filter 'colour:'"),
        ("beach after:yesterday", 12, "not a date"),
        ("beach after:2018-01-01,2019-01-01", 23, "one date"),
        ("city: beach", 5, "needs a value"),
        ("2*", 2, "a term after '2*'"),
        ("2*+beach", 2, "a term after '2*'"),
        ("beach $", 6, "unexpected character '$'"),
        ("# beach", 0, "hashtag"),
        ("(beach city:london)", 7, "outside parentheses"),
        ("500*beach", 0, "above the limit"),
        ("1e3*beach", 3, "'1e3' is not a weight: a weight is a plain number before its term"),
        ("beach*2", 5, "'beach' is not a weight"),
        ("(sun+sea)*2", 9, "'*' must follow a weight"),
        # A hashtag holds no space (ingest reads "New York" as new and york): refused, not one tag no post has.
        ('beach tag:"new york"', 10, "'new york' is not one hashtag: hashtags hold no space"),
        ('beach tag:sun,"#New  York"', 14, "as the tags new and york); write tag:newyork"),
        ("beach tag:#", 10, "'tag:' needs a value, e.g. tag:beach"),  # was no filter at all
    ],
)
def test_syntax_errors_say_what_and_where(expression: str, position: int, fragment: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse(expression)
    assert caught.value.position == position
    assert fragment in caught.value.message
    assert caught.value.pretty().splitlines()[-1] == "  " + " " * position + "^"


def test_a_tag_with_a_space_suggests_the_one_word_tag() -> None:
    with pytest.raises(QueryError) as caught:
        parse('dog tag:"New York"')
    assert caught.value.suggestions == ["tag:newyork"]
    assert parse("dog tag:newyork,#Beach").filters == Filters(hashtags=("newyork", "beach"))


def test_limits_from_settings() -> None:
    limits = QueryLimits(max_chars=30, max_terms=3, max_weight=5, max_nesting=2)
    with pytest.raises(QueryError, match="limit is 30"):
        parse("a" * 31, limits)
    with pytest.raises(QueryError, match="more than 3 terms") as caught:
        parse("a+b+c+d", limits)
    assert caught.value.position == 6
    with pytest.raises(QueryError, match="deeper than 2"):
        parse("(((a)))", limits)
    with pytest.raises(QueryError, match="above the limit of 5"):
        parse("6*a", limits)
    assert parse("((a))+5*b", limits).expression is not None


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(QueryError, match="deeper"):
        parse("(" * 2000 + "a" + ")" * 2000, QueryLimits(max_chars=10_000))


# --- properties ----------------------------------------------------------------------------------

_words = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)
_numbers_as_words = st.from_regex(r"[0-9]{1,4}", fullmatch=True)
_phrases = st.text(min_size=1, max_size=12).filter(lambda s: s.strip() != "")
_ids = st.text(st.characters(blacklist_categories=("Z", "C"), blacklist_characters="[]"), min_size=1, max_size=8)
_weights = st.decimals(min_value=0, max_value=100, places=3, allow_nan=False).map(float)

_terms = st.one_of(
    _words.map(word),
    _numbers_as_words.map(word),
    _phrases.map(lambda s: Term("phrase", s)),
    _ids.map(lambda s: Term("image", s)),
)


def _extend(children: st.SearchStrategy) -> st.SearchStrategy:
    parts = st.lists(st.tuples(st.sampled_from([1, -1]), children), min_size=1, max_size=4)
    # A lone positive part is written without parentheses, so it is not a Sum of its own.
    sums = parts.filter(lambda p: len(p) > 1 or p[0][0] < 0).map(lambda p: Sum(tuple(p)))
    return st.one_of(sums, st.builds(Scaled, _weights, children))


_nodes = st.recursive(_terms, _extend, max_leaves=12)
_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=8).filter(
    lambda s: s.strip() != ""
)
_times = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1))
_filters = st.builds(
    Filters,
    cities=st.lists(_values, max_size=3).map(tuple),
    hashtags=st.lists(_values.filter(lambda s: len(s.split()) == 1), max_size=2).map(tuple),  # no space inside
    sources=st.lists(_values, max_size=2).map(tuple),
    after=st.none() | _times,
    before=st.none() | _times,
)


@hsettings(max_examples=200, deadline=None)
@given(_nodes, _filters)
def test_printing_then_parsing_round_trips(node, filters: Filters) -> None:
    query = ParsedQuery(node, filters)
    text = query.to_text()
    again = parse(text, QueryLimits(max_chars=100_000))
    assert again == query, text
    assert again.to_text() == text


_query_alphabet = st.sampled_from(
    list("ab +-*().,:[]_#\"\\0123456789") + ["img", "IMG_", "city:", "after:", "2018-01-01", "tag:", "\n", "é"]
)


@hsettings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(_query_alphabet, max_size=30).map("".join)))
def test_random_text_raises_only_query_error(text: str) -> None:
    try:
        parsed = parse(text)
    except QueryError as exc:
        assert exc.position is None or 0 <= exc.position <= len(text)
        return
    assert parse(parsed.to_text(), QueryLimits(max_chars=100_000)) == parsed
