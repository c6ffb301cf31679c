"""The pure parts of planning: page depth and candidates, rank fusion, near-duplicate collapse."""

from __future__ import annotations

import numpy as np
import pytest
from jointspace.query.algebra import weighted_terms
from jointspace.query.collapse import collapse
from jointspace.query.fusion import reciprocal_rank_fusion
from jointspace.query.keyword import keyword_query, mentions_any
from jointspace.query.parser import parse
from jointspace.query.planner import plan_page

from jointspace.errors import QueryError
from jointspace.records import Hit
from jointspace.settings import Settings
from tests.query.query_geometry import mix, post


def test_num_candidates_do_not_depend_on_the_page() -> None:
    settings = Settings(num_candidates_factor=10, min_num_candidates=100, max_num_candidates=1000, max_k=500)
    plans = [plan_page(20, page, settings) for page in range(1, 11)]
    assert {p.num_candidates for p in plans} == {200}
    assert [(p.start, p.depth) for p in plans[:3]] == [(0, 20), (20, 40), (40, 60)]
    assert plan_page(3, 1, settings).num_candidates == 100  # the floor
    assert plan_page(150, 3, settings).num_candidates == 1000  # the ceiling, still ≥ depth 450


def test_pages_beyond_max_k_are_refused() -> None:
    settings = Settings(max_k=100)
    with pytest.raises(QueryError, match="top 120 results"):
        plan_page(20, 6, settings)
    for k, page in [(0, 1), (101, 1), (10, 0), (True, 1)]:
        with pytest.raises(QueryError):
            plan_page(k, page, settings)


def test_rrf_scores_by_hand() -> None:
    fused = dict(reciprocal_rank_fusion([(1.0, ["a", "b", "c"]), (1.0, ["c", "a"])], rrf_k=60))
    assert fused == pytest.approx({"a": 1 / 61 + 1 / 62, "b": 1 / 62, "c": 1 / 63 + 1 / 61})
    order = [i for i, _ in reciprocal_rank_fusion([(1.0, ["a", "b", "c"]), (1.0, ["c", "a"])], rrf_k=60)]
    assert order == ["a", "c", "b"]


def test_rrf_weights_and_ties() -> None:
    fused = reciprocal_rank_fusion([(2.0, ["x"]), (1.0, ["y", "x"])], rrf_k=10)
    assert fused == [("x", pytest.approx(2 / 11 + 1 / 12)), ("y", pytest.approx(1 / 11))]
    # Equal scores: the better best rank first, then the id.
    assert [i for i, _ in reciprocal_rank_fusion([(1.0, ["b", "a"]), (1.0, ["a", "b"])], 60)] == ["a", "b"]


def _hit(post_id: str, vector: np.ndarray | None, score: float = 1.0) -> Hit:
    return Hit(post=post(post_id, ""), score=score, vector=vector)


def test_collapse_keeps_the_best_ranked_of_near_duplicates() -> None:
    hits = [
        _hit("a", mix(boat=1, river=1)),
        _hit("b", mix(park=1)),
        _hit("c", mix(boat=1, river=0.95)),
        _hit("d", None),
        _hit("e", mix(park=1, dog=0.1)),
    ]
    kept, dropped = collapse(hits, 0.95)
    assert [h.id for h in kept] == ["a", "b", "d"]
    assert [(c.id, c.duplicate_of) for c in dropped] == [("c", "a"), ("e", "b")]
    assert dropped[0].similarity == pytest.approx(float(mix(boat=1, river=1) @ mix(boat=1, river=0.95)))
    assert [h.id for h in collapse(hits, None)[0]] == ["a", "b", "c", "d", "e"]
    assert [h.id for h in collapse(hits, 0.9999)[0]] == ["a", "b", "c", "d", "e"]


def test_keyword_side_of_an_expression() -> None:
    query = keyword_query(weighted_terms(parse('bike + "red car" - park - "old dog" + [img:3] + 0*sun').expression))
    assert query.words == ("bike",)
    assert query.phrases == ("red car",)
    assert query.excluded == ("park", "old", "dog")
    assert query.text == 'bike "red car"'
    assert mentions_any(_hit_caption("a bike in the Park"), query.excluded)
    assert mentions_any(Hit(post=post("x", "bike", tags=("dog",)), score=1.0), query.excluded)
    assert not mentions_any(_hit_caption("a bike by the parking"), query.excluded)


def _hit_caption(caption: str) -> Hit:
    return Hit(post=post("x", caption), score=1.0)
