"""SearchService on every backend, against the hand-set geometry of `geometry.py`."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from jointspace.query.cutoff import auto_min_score
from jointspace.query.service import SearchService

from jointspace.errors import QueryError
from jointspace.protocols import SearchBackend
from jointspace.records import Filters
from jointspace.settings import Settings
from tests.query.query_geometry import EXAMPLES, LADDER, axis, documents, ladder_similarity

VECTORS = {d.id: d.vector for d in documents()}
# int8_hnsw quantises the stored vectors; rescoring restores them, up to float rounding in the node.
SCORE_TOLERANCE = 2e-3


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def exact_ranking(query: np.ndarray, ids: list[str] | None = None) -> list[str]:
    ids = ids or list(VECTORS)
    return sorted(ids, key=lambda i: (-float(VECTORS[i] @ query), i))


CITIES = {d.id: d.post.city for d in documents()}
CREATED = {d.id: d.post.created_at for d in documents()}


def first_ids(query: np.ndarray, ids: list[str] | None = None) -> set[str]:
    """The exact first of `ids` for `query`, with any tied with it within SCORE_TOLERANCE (the
    quantised index may order those either way)."""
    ids = ids or list(VECTORS)
    best = float(VECTORS[exact_ranking(query, ids)[0]] @ query)
    return {i for i in ids if float(VECTORS[i] @ query) >= best - SCORE_TOLERANCE}


@pytest.mark.parametrize("expression", EXAMPLES)
def test_the_example_queries_run(service: SearchService, expression: str) -> None:
    result = service.search(expression, k=5, collapse=False)
    assert len(result.hits) == 5
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True)
    # The expected hits come from the exact ranking of the hand-computed geometry, not hard-coded ids.
    query = service.query_vector(expression)
    allowed = [i for i in VECTORS if "city:london" not in expression or CITIES[i] == "london"]
    expected = exact_ranking(query, allowed)[:5]
    assert scores == pytest.approx([float(VECTORS[i] @ query) for i in expected], abs=SCORE_TOLERANCE)
    assert result.hits[0].id in first_ids(query, allowed)
    if "city:london" in expression:
        assert {h.post.city for h in result.hits} == {"london"}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2*beach-0.5*sunset", unit(2 * axis("beach") - 0.5 * axis("sunset"))),
        ("[IMG_1]+park+park+park", unit(VECTORS["1"] + 3 * axis("park"))),
        ("[IMG_3]-dog", unit(VECTORS["3"] - axis("dog"))),
        (
            '2*(beach+"sun and sunrise")-car',
            unit(2 * axis("beach") + 2 * unit(axis("sun") + axis("sunrise")) - axis("car")),
        ),
    ],
)
def test_scores_are_dot_products_with_the_hand_computed_query(
    service: SearchService, expression: str, expected: np.ndarray
) -> None:
    np.testing.assert_allclose(service.query_vector(expression), expected, atol=1e-6)
    result = service.search(expression, k=8, collapse=False)
    best = sorted((float(v @ expected) for v in VECTORS.values()), reverse=True)[:8]
    assert [h.score for h in result.hits] == pytest.approx(best, abs=SCORE_TOLERANCE)
    assert result.hits[0].id == exact_ranking(expected)[0]
    for hit in result.hits:
        assert hit.score == pytest.approx(float(VECTORS[hit.id] @ expected), abs=SCORE_TOLERANCE)
        assert hit.vector is None  # not asked for


def test_explain_terms_words_and_similarities(service: SearchService) -> None:
    result = service.search("[IMG_1]+park+park+park", k=3, collapse=False)
    explain = result.explain
    query = unit(VECTORS["1"] + 3 * axis("park"))
    terms = {t["term"]: t for t in explain["terms"]}
    assert terms["park"]["weight"] == 3.0
    assert terms["park"]["contribution"] == pytest.approx(3 * float(query @ axis("park")), abs=1e-5)
    assert terms["[img:1]"]["contribution"] == pytest.approx(float(query @ VECTORS["1"]), abs=1e-5)
    assert [w["word"] for w in explain["nearest_words"][:2]] == ["park", "people"]
    for row, hit in zip(explain["hits"], result.hits, strict=True):
        assert row["id"] == hit.id and row["semantic"] >= 1
        assert row["similarity"] == pytest.approx(float(VECTORS[hit.id] @ query), abs=1e-5)
    assert explain["parsed"] == "[img:1] + park + park + park" and explain["mode"] == "semantic"
    assert explain["timings_ms"]["total"] >= explain["timings_ms"]["backend"] > 0


def test_filters_go_inside_the_knn_so_a_rare_city_still_fills_k(service: SearchService) -> None:
    unfiltered = service.search("train", k=3, collapse=False)
    assert {h.post.city for h in unfiltered.hits} == {"london"}
    rare = service.search("train city:oslo", k=3, collapse=False)
    assert sorted(h.id for h in rare.hits) == ["o0", "o1", "o2"]
    also = service.search("train", filters=Filters(cities=("Oslo",)), k=10, collapse=False)
    assert [h.post.city for h in also.hits].count("oslo") == len(also.hits) == 4  # three trains and post 23


def test_inline_and_parameter_filters_combine(service: SearchService) -> None:
    result = service.search("beach after:2018-01-01", filters=Filters(cities=("sydney",)), k=5, collapse=False)
    assert "26" not in [h.id for h in result.hits]  # 2017: before the `after` bound
    allowed = [i for i in VECTORS if CITIES[i] == "sydney" and CREATED[i] >= datetime(2018, 1, 1)]
    assert result.hits[0].id in first_ids(service.query_vector("beach"), allowed)
    assert {h.post.city for h in result.hits} == {"sydney"}
    assert result.explain["filters"]["cities"] == ["sydney"]


def test_min_score_cuts_irrelevant_hits(service: SearchService) -> None:
    expected = [f"f{i:02d}" for i in range(LADDER) if ladder_similarity(i) >= 0.8]
    result = service.search("food", k=50, min_score=0.8, collapse=False)
    assert [h.id for h in result.hits] == expected and not result.has_more
    assert service.search("snow", k=10, min_score=0.9).hits == []


def test_min_score_auto_keeps_what_stands_out_of_the_query_s_own_scores(service: SearchService) -> None:
    """`auto` cuts each query at its own threshold (query.cutoff, from its top scores): the hits kept
    are exactly those a no-cut-off search ranks at or above it, and each query keeps its clear hits
    (post 3 for dog and for dog+park, the park pair for park) while the unrelated rest goes."""
    for query, expected in (("dog", ["3"]), ("park", ["1", "3"]), ("dog+park", ["3"])):
        full = service.search(query, k=100, collapse=False)
        threshold = auto_min_score([h.score for h in full.hits])
        auto = service.search(query, k=10, min_score="auto", collapse=False)
        assert auto.explain["min_score"] == "auto" and auto.explain["min_score_auto"] == pytest.approx(threshold)
        assert [h.id for h in auto.hits] == [h.id for h in full.hits if h.score >= threshold][:10] == expected
        assert not auto.has_more
    # Page 2 of a cut list is the rest of the same cut list.
    first, second = (service.search("park", k=1, page=p, min_score="auto", collapse=False) for p in (1, 2))
    assert [h.id for h in first.hits + second.hits] == ["1", "3"] and first.has_more
    assert first.explain["min_score_auto"] == second.explain["min_score_auto"]
    with pytest.raises(QueryError, match="min_score must be a number or 'auto'"):
        service.search("dog", min_score="sometimes")
    # A pool too small to judge by cuts nothing, and the explanation says why.
    few = service.search("dog city:sydney", min_score="auto", collapse=False)
    assert few.explain["min_score_auto"] is None and len(few.hits) == 3
    assert few.explain["min_score_note"].startswith("no cut-off: only 3 candidates, too few"), few.explain
    assert "min_score_note" not in auto.explain


def test_near_duplicates_collapse_to_the_best_ranked(service: SearchService) -> None:
    collapsed = service.search("boat", k=3)
    ids = [h.id for h in collapsed.hits]
    assert ids[0] == "31" and "30" not in ids and len(ids) == 3  # refilled from deeper results
    assert collapsed.explain["collapsed"][0]["id"] == "30"
    assert collapsed.explain["collapsed"][0]["duplicate_of"] == "31"
    assert [h.id for h in service.search("boat", k=3, collapse=False).hits][:2] == ["31", "30"]
    assert [h.id for h in service.search("boat", k=3, collapse=0.99999).hits][:2] == ["31", "30"]


def test_pages_continue_each_other(service: SearchService) -> None:
    whole = [h.id for h in service.search("food", k=LADDER).hits]
    assert whole == [f"f{i:02d}" for i in range(LADDER)]
    pages = [service.search("food", k=7, page=p) for p in range(1, 5)]
    assert [h.id for page in pages for h in page.hits] == whole[:28]
    assert all(p.has_more for p in pages) and [p.page for p in pages] == [1, 2, 3, 4]


def test_hybrid_is_reciprocal_rank_fusion_of_both_lists(
    service: SearchService, backend: SearchBackend, settings: Settings
) -> None:
    result = service.search("dog+park", mode="hybrid", k=6, collapse=False)
    window = result.explain["plan"]["window"]
    query = unit(axis("dog") + axis("park"))
    semantic = [h.id for h in backend.knn(query, window, window)]
    keyword = [h.id for h in backend.keyword("dog park", window)]
    by_hand: dict[str, float] = {}
    for ranking in (semantic, keyword):
        for rank, post_id in enumerate(ranking, start=1):
            by_hand[post_id] = by_hand.get(post_id, 0.0) + 1.0 / (settings.rrf_k + rank)
    best = sorted(by_hand.values(), reverse=True)[:6]
    assert [h.score for h in result.hits] == pytest.approx(best)
    for hit in result.hits:
        assert hit.score == pytest.approx(by_hand[hit.id])
    assert result.hits[0].id == max(by_hand, key=lambda i: by_hand[i])  # "3": first in both lists
    assert result.explain["hits"][0]["semantic"] == 1 and result.explain["hits"][0]["keyword"] == 1


def test_keyword_mode_excludes_minus_terms(service: SearchService) -> None:
    ids = [h.id for h in service.search("bike-park", mode="keyword", k=10).hits]
    assert ids == ["22"]  # "bike in the park" (21) is excluded
    assert "21" in [h.id for h in service.search("bike", mode="keyword", k=10).hits]
    phrase = service.search('"street food" city:tokyo', mode="keyword", k=5)
    assert len(phrase.hits) == 5 and {h.post.city for h in phrase.hits} == {"tokyo"}
    assert phrase.explain["keyword"]["phrases"] == ["street food"]


def test_keyword_mode_needs_no_vectors_but_words(service: SearchService) -> None:
    assert service.search("zebra", mode="keyword", k=5).hits == []  # unknown to the encoder: fine here
    with pytest.raises(QueryError, match="at least one word"):
        service.search("[img:1]", mode="keyword")


def test_hybrid_without_a_positive_word_runs_its_semantic_side_and_says_so(service: SearchService) -> None:
    """The README's `[img:p00042]-dog --mode hybrid`: images and minus-words only."""
    hybrid = service.search("[IMG_3]-dog", mode="hybrid", k=5, collapse=False)
    semantic = service.search("[IMG_3]-dog", mode="semantic", k=5, collapse=False)
    assert [h.id for h in hybrid.hits] == [h.id for h in semantic.hits] and len(hybrid.hits) == 5
    assert [h.score for h in hybrid.hits] == pytest.approx([h.score for h in semantic.hits])
    assert "semantic side only" in hybrid.explain["keyword_note"] and hybrid.explain["mode"] == "hybrid"
    assert "keyword_note" not in service.search("[IMG_3]+dog", mode="hybrid", k=5).explain
    with pytest.raises(QueryError, match="keyword search needs at least one word"):
        service.search("[IMG_3]-dog", mode="keyword")


def test_unknown_word_names_it_and_suggests(service: SearchService) -> None:
    with pytest.raises(QueryError) as caught:
        service.search("people+parc")
    assert caught.value.position == 7
    assert "'parc'" in caught.value.message and caught.value.suggestions[0] == "park"
    with pytest.raises(QueryError, match="unknown word 'zzzzqx'$"):
        service.search("zzzzqx")


def test_unknown_image_id(service: SearchService) -> None:
    with pytest.raises(QueryError, match="'999'") as caught:
        service.search("park + [img:999]")
    assert caught.value.position == 7


def test_terms_that_cancel_out(service: SearchService) -> None:
    with pytest.raises(QueryError, match="cancel out"):
        service.search("[img:1] - [IMG_1]")


def test_limits(service: SearchService, settings: Settings) -> None:
    with pytest.raises(QueryError, match="above the limit"):
        service.search("park", k=settings.max_k + 1)
    with pytest.raises(QueryError, match="page"):
        service.search("park", k=settings.max_k, page=2)
    with pytest.raises(QueryError, match="characters long"):
        service.search("park+" * 400 + "park")
    with pytest.raises(QueryError, match="unknown mode"):
        service.search("park", mode="fuzzy")  # type: ignore[arg-type]  # an unknown mode, on purpose


def test_a_time_range_that_no_post_can_match_is_refused(service: SearchService) -> None:
    with pytest.raises(QueryError, match="after 2015-01-01 is not before before 2014-01-01: no post can match"):
        service.search("dog after:2015-01-01 before:2014-01-01")
    with pytest.raises(QueryError, match="no post can match"):  # one bound inline, one a parameter
        service.search("dog after:2015-01-01", filters=Filters(before=datetime(2015, 1, 1)))
    service.search("dog after:2014-01-01", filters=Filters(before=datetime(2015, 1, 1)))  # a real range


def test_describe_post_and_city(service: SearchService) -> None:
    assert [w for w, _ in service.describe_post("1", k=2)] == sorted(["people", "park"])[::-1] or {
        w for w, _ in service.describe_post("1", k=2)
    } == {"people", "park"}
    words = service.describe_city("Sydney", k=3)
    assert words[0][0] == "beach"  # two of sydney's three posts are beaches
    with pytest.raises(QueryError, match="atlantis"):
        service.describe_city("atlantis")
    with pytest.raises(QueryError, match="no indexed posts"):  # not the mean of every post
        service.describe_city("  ")
    with pytest.raises(QueryError, match="nope"):
        service.describe_post("nope")


def test_search_with_a_photo_vector_and_terms(service: SearchService) -> None:
    result = service.search_vector(axis("dog"), expression="+park", k=3, include_vectors=True)
    assert result.hits[0].id in first_ids(unit(unit(axis("dog")) + axis("park")))
    assert result.hits[0].vector is not None
    assert result.explain["terms"][0]["term"] == "(uploaded photo)"
    with pytest.raises(QueryError, match="at least one word"):
        service.search_vector(axis("dog"), mode="keyword")


# Garbage made of query pieces (most of it refused), and well-formed expressions (all of them run).
PIECES = [
    "park",
    "dog",
    "zebra",
    "[img:1]",
    "[img:x]",
    "+",
    "-",
    "*",
    "2",
    "(",
    ")",
    " ",
    '"',
    "city:",
    "oslo",
    "0.5",
    "#",
]
WELL_FORMED = st.lists(
    st.sampled_from(["park", "dog", "beach", "[img:1]", "2*beach", '"sun and sunrise"', "(sun+sunrise)"]),
    min_size=1,
    max_size=4,
).map("+".join)


def test_random_queries_raise_only_query_errors(service: SearchService) -> None:
    outcomes: dict[str, list[str]] = {"ok": [], "refused": []}

    @hsettings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        st.one_of(st.lists(st.sampled_from(PIECES), max_size=14).map("".join), WELL_FORMED),
        st.sampled_from(["semantic", "keyword", "hybrid"]),
    )
    def run(text: str, mode: str) -> None:
        try:
            result = service.search(text, mode=mode, k=3)  # type: ignore[arg-type]  # the modes as plain strs
        except QueryError:
            outcomes["refused"].append(f"{mode}:{text}")
            return
        assert len(result.hits) <= 3
        outcomes["ok"].append(f"{mode}:{text}")

    run()
    # A parser that refused everything would pass the loop above: the well-formed half must run.
    assert len(outcomes["ok"]) >= 20, outcomes
    assert {o.split(":", 1)[0] for o in outcomes["ok"]} == {"semantic", "keyword", "hybrid"}, outcomes
    assert outcomes["refused"], "no garbage was refused"


def test_vectors_come_back_only_when_asked(service: SearchService) -> None:
    hits = service.search("dog+park", k=3, collapse=False, include_vectors=True).hits
    for hit in hits:
        np.testing.assert_allclose(hit.vector, VECTORS[hit.id], atol=1e-6)
    assert all(h.vector is None for h in service.search("dog+park", k=3).hits)
