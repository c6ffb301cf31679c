"""Weights, repetition, parentheses and signs, checked against vectors computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
from jointspace.query.algebra import combine, contributions, weighted_terms
from jointspace.query.parser import parse

from jointspace.errors import QueryError
from tests.query.query_geometry import GeometryEncoder, axis


def query_vector(expression: str) -> np.ndarray:
    terms = weighted_terms(parse(expression).expression)
    encoder = GeometryEncoder()
    vectors = {t.term.key: encoder.embed_words([t.term.text])[0] for t in terms}
    return combine(terms, vectors, expression)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("park", axis("park")),
        ("people+park", unit(axis("people") + axis("park"))),
        ("bike-park", unit(axis("bike") - axis("park"))),
        ("park+park+park-bike", unit(3 * axis("park") - axis("bike"))),
        ("2*beach-0.5*sunset", unit(2 * axis("beach") - 0.5 * axis("sunset"))),
        ("2*(beach+sun)-car", unit(2 * axis("beach") + 2 * axis("sun") - axis("car"))),
        ("-(beach-sun)", unit(axis("sun") - axis("beach"))),
        ("0.5*(2*(park - 3*dog))", unit(axis("park") - 3 * axis("dog"))),
        ("beach sun", unit(axis("beach") + axis("sun"))),
    ],
)
def test_query_vector_matches_hand_computation(expression: str, expected: np.ndarray) -> None:
    np.testing.assert_allclose(query_vector(expression), expected, atol=1e-6)


def test_repeated_terms_merge_into_one_weight() -> None:
    terms = weighted_terms(parse("park + 2*park - dog + #park").expression)
    assert [(t.term.text, t.weight) for t in terms] == [("park", 4.0), ("dog", -1.0)]


def test_contributions_are_weight_times_cosine() -> None:
    expression = "3*park - dog"
    terms = weighted_terms(parse(expression).expression)
    vectors = {t.term.key: axis(t.term.text) for t in terms}
    query = combine(terms, vectors)
    # q = (3·park - dog)/√10: park's share 3·3/√10, dog's -1·(-1/√10).
    assert contributions(terms, vectors, query) == pytest.approx([9 / np.sqrt(10), 1 / np.sqrt(10)], abs=1e-6)


@pytest.mark.parametrize("expression", ["park-park", "2*(beach-sun) - 2*beach + 2*sun", "0*park"])
def test_terms_that_cancel_are_an_error(expression: str) -> None:
    with pytest.raises(QueryError, match="cancel out"):
        query_vector(expression)


@pytest.mark.parametrize(
    ("expression", "example"),
    [("city:tokyo", "beach city:tokyo"), (" tag:dog  after:2020-01-01", "beach tag:dog after:2020-01-01")],
)
def test_a_query_of_filters_only_is_told_to_add_a_word_or_an_image(expression: str, example: str) -> None:
    """`city:tokyo` alone has nothing to search with: the message says what to add, with the
    query's own filters in the example (it said only "the query has no terms to search with")."""
    with pytest.raises(QueryError) as refused:
        query_vector(expression)
    message = refused.value.message
    assert "no terms to search with" in message and "add a word or an image" in message, message
    assert f"e.g. {example}" in message, message
