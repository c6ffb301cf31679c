"""The one search request model (`jointspace.query.request`) that every search door parses with."""

from __future__ import annotations

import re
import sys
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from jointspace.query.filters import SPACES, TAG_PATTERN
from jointspace.query.request import PhotoSearchRequest, SearchRequest, merge_sources

from jointspace.errors import QueryError
from jointspace.records import Filters
from jointspace.settings import Settings


def test_raw_strings_become_typed_values_and_filters() -> None:
    request = SearchRequest.from_values(
        {
            "q": "dog",
            "city": ["Paris", "london"],
            "tag": ["#Park"],
            "source": ["openclipart"],
            "after": "2024-01-01",
            "k": "5",
            "page": "2",
            "min_score": "0.25",
            "collapse": "false",
        },
        Settings(),
    )
    assert request.k == 5 and request.page == 2 and request.min_score == 0.25 and request.collapse is False
    assert request.to_filters() == Filters(
        cities=("london", "paris"), hashtags=("park",), sources=("openclipart",), after=datetime(2024, 1, 1)
    )
    arguments = request.search_arguments()
    assert arguments["collapse"] is False and arguments["k"] == 5 and arguments["min_score"] == 0.25


@pytest.mark.parametrize(
    "values, message",
    [
        ({"k": 0}, "k must be between 1 and 500"),
        ({"k": 501}, "k must be between 1 and 500"),
        ({"page": 0}, "page must be 1 or more"),
        ({"k": 50, "page": 11}, "would need the top 550"),
        ({"min_score": "nan"}, "min_score must be a finite number"),
        ({"min_score": "sometimes"}, "min_score must be a number or 'auto'"),
        ({"min_score": 2}, "min_score must be a similarity between -1 and 1, or 'auto', not 2"),  # as for alerts
        ({"k": "many"}, "k: Input should be"),
        ({"mode": "fuzzy"}, "mode: Input should be"),
        ({"after": "yesterday"}, "after: 'yesterday' is not a date: write it as 2018-01-31"),  # as inline
        ({"city": [" "]}, "city: needs a value, e.g. london"),
        ({"tag": ["#"]}, "tag: needs a value, e.g. beach"),
        ({"tag": ["# #"]}, "tag: needs a value, e.g. beach"),
        ({"tag": ["beach", "New York"]}, "tag: 'New York' is not one hashtag: .* write tag:newyork"),  # as inline
        ({"q": "a" * 1001}, "query longer than 1000 characters"),
    ],
)
def test_every_bound_is_a_query_error(values: dict, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        SearchRequest.from_values(values, Settings())


def test_min_score_is_a_number_or_auto_at_every_door() -> None:
    for raw in ("auto", "AUTO", " auto "):
        request = SearchRequest.from_values({"q": "dog", "min_score": raw}, Settings())
        assert request.min_score == "auto" and request.search_arguments()["min_score"] == "auto"
    assert SearchRequest.from_values({"min_score": "0.3"}, Settings()).min_score == 0.3
    assert PhotoSearchRequest.from_values({"min_score": "auto"}, Settings()).min_score == "auto"


def test_a_parameter_in_two_places_must_agree() -> None:
    first, second = PhotoSearchRequest(k=3), PhotoSearchRequest(k=3, city=["paris"])
    assert merge_sources(first, second, "here") == {"k": 3, "city": ["paris"]}
    with pytest.raises(QueryError, match="'k' is given twice"):
        merge_sources(PhotoSearchRequest(k=3), PhotoSearchRequest(k=4), "here")


@hsettings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from(list("ab #\t\n\u00a0\x1c\x85\ufeffé")), max_size=8))
def test_a_tag_parameter_is_accepted_exactly_when_the_schema_pattern_matches(text: str) -> None:
    """The OpenAPI schema states what the request model accepts (the fuzz tests send both sides)."""
    schema = SearchRequest.model_json_schema()["properties"]["tag"]["items"]
    assert schema["pattern"] == TAG_PATTERN
    try:
        SearchRequest.from_values({"q": "dog", "tag": [text]}, Settings())
        accepted = True
    except QueryError:
        accepted = False
    assert accepted == (re.search(TAG_PATTERN, text) is not None), text


def test_the_tag_pattern_spells_out_the_whitespace_ingest_splits_hashtags_on() -> None:
    """JSON Schema's `\\s` is ECMA-262's (no \\x1c-\\x1f, \\x85; \\ufeff): the fuzzer took `a\\x1cb`
    for one tag by it, where ingest's split() reads two. The pattern lists str.isspace's set."""
    spaces = re.compile(f"[{SPACES}]")
    assert [hex(c) for c in range(sys.maxunicode + 1) if chr(c).isspace() != bool(spaces.fullmatch(chr(c)))] == []
