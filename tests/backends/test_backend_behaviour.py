"""The SearchBackend contract, checked identically on the embedded store and on Elasticsearch."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import numpy as np
import pytest

from jointspace.errors import DimensionError, ModelMismatchError
from jointspace.protocols import SearchBackend
from jointspace.records import Filters
from tests.backends.backend_corpus import BIG_CITIES, DIM, RARE_CITY, START, city_corpus, doc, unit_vectors

CORPUS = city_corpus()
VECTORS = np.stack([d.vector for d in CORPUS])


def exact_top(query: np.ndarray, k: int, keep: np.ndarray | None = None) -> list[str]:
    scores = VECTORS @ (query / np.linalg.norm(query))
    if keep is not None:
        scores = np.where(keep, scores, -np.inf)
    return [CORPUS[i].id for i in np.argsort(-scores)[:k] if np.isfinite(scores[i])]


def mask(predicate) -> np.ndarray:  # type: ignore[no-untyped-def]  # any row predicate
    return np.array([bool(predicate(d.post)) for d in CORPUS])


# --- writes on a fresh backend ------------------------------------------------------------------


def test_satisfies_the_protocol(backend: SearchBackend) -> None:
    assert isinstance(backend, SearchBackend)
    assert (backend.model, backend.dim) == ("test-model", DIM)


def test_upserting_the_same_post_twice_leaves_one_document(backend: SearchBackend) -> None:
    vectors = unit_vectors(2, DIM, seed=1)
    assert backend.upsert([doc("a", vectors[0], caption="first version")]).indexed == ["a"]
    assert backend.upsert([doc("a", vectors[1], caption="second version")]).indexed == ["a"]
    backend.refresh()
    assert backend.count() == 1
    stored = backend.get("a")
    assert stored is not None and stored.post.caption == "second version"
    np.testing.assert_allclose(stored.vector, vectors[1], atol=1e-6)
    assert [h.id for h in backend.knn(vectors[1], k=5)] == ["a"]


def test_one_write_of_many_posts_keeps_their_order_and_the_last_version_of_each(backend: SearchBackend) -> None:
    """Large enough for Elasticsearch to send it as concurrent bulk requests (es_bulk_in_flight):
    a post given twice in one write still ends as its last version, as one request leaves it."""
    vectors = unit_vectors(80, DIM, seed=3)
    docs = [doc(f"m{i}", vectors[i], caption=f"first {i}") for i in range(70)]
    docs += [doc(f"m{i}", vectors[70 + i % 10], caption=f"second {i}") for i in range(0, 70, 7)]
    result = backend.upsert(docs)
    assert not result.errors and result.indexed == [f"m{i}" for i in range(70)]  # each once, in order
    backend.refresh()
    assert backend.count() == 70
    stored = backend.get_many([f"m{i}" for i in range(70)])
    assert {pid: d.post.caption for pid, d in stored.items()} == {
        f"m{i}": (f"second {i}" if i % 7 == 0 else f"first {i}") for i in range(70)
    }


def test_vector_round_trip_is_exact(backend: SearchBackend) -> None:
    vectors = unit_vectors(3, DIM, seed=2)
    backend.upsert([doc(f"v{i}", v, city="Oslo", hashtags=("Fjord",), created_at=START) for i, v in enumerate(vectors)])
    backend.refresh()
    found = backend.get_many(["v0", "v2", "missing"])
    assert sorted(found) == ["v0", "v2"]
    # Both backends keep the float32 values themselves (ES: doc values of the dense_vector).
    np.testing.assert_allclose(found["v2"].vector, vectors[2], atol=1e-6)
    assert found["v0"].post == doc("v0", vectors[0], city="Oslo", hashtags=("Fjord",), created_at=START).post
    assert found["v0"].model == "test-model"
    without = backend.get("v1", with_vector=False)
    assert without is not None and without.vector.size == 0
    assert backend.get("missing") is None


def test_delete(backend: SearchBackend) -> None:
    vectors = unit_vectors(2, DIM, seed=3)
    backend.upsert([doc("keep", vectors[0], caption="a bike"), doc("gone", vectors[1], caption="a bike")])
    backend.refresh()
    assert backend.delete("gone") is True
    assert backend.delete("gone") is False
    backend.refresh()
    assert backend.get("gone") is None
    assert backend.count() == 1
    assert [h.id for h in backend.knn(vectors[1], k=5)] == ["keep"]
    assert [h.id for h in backend.keyword("bike", k=5)] == ["keep"]


def test_wrong_dimension_is_refused_with_both_sizes(backend: SearchBackend) -> None:
    wrong = unit_vectors(1, DIM + 3, seed=4)[0]
    with pytest.raises(DimensionError, match=rf"{DIM + 3}.*{DIM}"):
        backend.upsert([doc("ok", unit_vectors(1, DIM, seed=5)[0]), doc("bad", wrong)])
    with pytest.raises(DimensionError, match=rf"{DIM + 3}.*{DIM}"):
        backend.knn(wrong, k=3)
    backend.refresh()
    assert backend.count() == 0  # nothing of the refused batch was written


def test_bad_items_are_reported_and_the_rest_written(backend: SearchBackend) -> None:
    good = unit_vectors(1, DIM, seed=6)[0]
    result = backend.upsert([doc("good", good), doc("long", good * 2), doc("nan", np.full(DIM, np.nan))])
    assert result.indexed == ["good"]
    assert set(result.errors) == {"long", "nan"}
    assert "unit length" in result.errors["long"] and "non-finite" in result.errors["nan"]
    with pytest.raises(ModelMismatchError, match="other-model"):
        backend.upsert([doc("alien", good, model="other-model")])


def test_keyword_finds_stemmed_forms(backend: SearchBackend) -> None:
    vectors = unit_vectors(4, DIM, seed=8)
    backend.upsert(
        [
            doc("runner", vectors[0], caption="Running along the beach at dawn"),
            doc("dog", vectors[1], caption="A dog sleeping"),
            doc("tagged", vectors[2], caption="morning", hashtags=("Runs",)),
            doc("park", vectors[3], caption="the park", city="Paris"),
        ]
    )
    backend.refresh()
    assert {h.id for h in backend.keyword("runs", k=10)} == {"runner", "tagged"}
    assert {h.id for h in backend.keyword("run", k=10)} == {"runner", "tagged"}
    assert [h.id for h in backend.keyword("sleeps", k=10)] == ["dog"]
    assert backend.keyword("running", k=10, filters=Filters(cities=("paris",))) == []
    assert backend.keyword("   ", k=10) == []
    hits = backend.keyword("running dawn", k=10)
    assert hits[0].id == "runner" and all(a.score >= b.score for a, b in pairwise(hits))


def test_keyword_among_a_batch_sees_only_those_posts_right_after_the_write(backend: SearchBackend) -> None:
    """The alert check's keyword side: each query answered among the given ids only, without a refresh
    by the caller (the batch was just written), filters inside, best first."""
    vectors = unit_vectors(6, DIM, seed=9)
    backend.upsert([doc("old-run", vectors[0], caption="running by the river")])
    backend.refresh()
    backend.upsert(
        [
            doc("new-run", vectors[1], caption="Running along the beach at dawn", city="Paris"),
            doc("new-dog", vectors[2], caption="a dog running", city="Lima"),
            doc("new-cat", vectors[3], caption="a cat asleep", hashtags=("runs",)),
        ]
    )
    new = ["new-run", "new-dog", "new-cat"]
    answers = backend.keyword_among(
        [("runs", None), ("running dawn", None), ("dog", Filters(cities=("paris",))), ("   ", None), ("cat", None)], new
    )
    assert [{h.id for h in hits} for hits in answers] == [set(new), set(new), set(), set(), {"new-cat"}]
    scores = [h.score for h in answers[1]]
    assert answers[1][0].id == "new-run" and scores == sorted(scores, reverse=True)  # both words: best
    assert backend.keyword_among([("runs", None)], []) == [[]]


# --- reads on the shared 2,000-post corpus -----------------------------------------------------


def test_rare_city_still_gets_its_posts(city_backend: SearchBackend) -> None:
    query = VECTORS[1000]
    hits = city_backend.knn(query, k=10, filters=Filters(cities=(RARE_CITY.upper(),)))
    assert sorted(h.id for h in hits) == ["rare-0", "rare-1", "rare-2"]
    # k results whenever at least k posts match, in exact order for this small filtered set.
    keep = mask(lambda p: p.city.lower() == "madrid")
    hits = city_backend.knn(query, k=10, filters=Filters(cities=("Madrid",)))
    assert [h.id for h in hits] == exact_top(query, 10, keep)


def test_knn_scores_are_dot_products(city_backend: SearchBackend) -> None:
    query = VECTORS[5]
    hits = city_backend.knn(query, k=5)
    assert hits[0].id == CORPUS[5].id
    for hit in hits:
        expected = float(VECTORS[[d.id for d in CORPUS].index(hit.id)] @ query)
        assert hit.score == pytest.approx(expected, abs=1e-5)
    assert all(a.score >= b.score for a, b in pairwise(hits))


def test_knn_ranked_top_keeps_exact_scores_and_the_top_in_order(city_backend: SearchBackend) -> None:
    # Hybrid search asks for a fusion window of which it ranks about a page: on Elasticsearch's int8
    # index fewer candidates are re-scored, yet every score stays exact and the top is exact.
    query = VECTORS[11]
    pool = city_backend.knn(query, k=60, num_candidates=600, ranked_top=6)
    assert len(pool) == 60
    assert [h.id for h in pool[:6]] == exact_top(query, 6)
    assert len({h.id for h in pool} & set(exact_top(query, 60))) >= 57
    ids = [d.id for d in CORPUS]
    for hit in pool:
        assert hit.score == pytest.approx(float(VECTORS[ids.index(hit.id)] @ query), abs=1e-5)
    assert all(a.score >= b.score for a, b in pairwise(pool))


def test_knn_with_vectors_returns_each_hits_stored_vector(city_backend: SearchBackend) -> None:
    query = VECTORS[7]
    plain = city_backend.knn(query, k=5, filters=Filters(cities=("paris",)))
    with_vectors = city_backend.knn(query, k=5, filters=Filters(cities=("paris",)), with_vectors=True)
    assert [h.id for h in with_vectors] == [h.id for h in plain]
    assert all(h.vector is None for h in plain)
    ids = [d.id for d in CORPUS]
    for hit in with_vectors:
        assert hit.vector is not None
        np.testing.assert_allclose(hit.vector, VECTORS[ids.index(hit.id)], atol=1e-6)


@pytest.mark.parametrize(
    "filters, predicate",
    [
        (Filters(cities=("paris", "Berlin")), lambda p: p.city.lower() in {"paris", "berlin"}),
        (Filters(hashtags=("#SUNSET",)), lambda p: "sunset" in p.hashtags),
        (Filters(sources=("feed-b",)), lambda p: p.source == "feed-b"),
        (
            Filters(after=START + timedelta(days=100), before=START + timedelta(days=300)),
            lambda p: START + timedelta(days=100) <= p.created_at < START + timedelta(days=300),
        ),
        (
            Filters(cities=("rome",), hashtags=("even", "sunset"), sources=("feed-a",)),
            lambda p: p.city.lower() == "rome" and {"even", "sunset"} & set(p.hashtags) and p.source == "feed-a",
        ),
    ],
    ids=["cities", "hashtag", "source", "time-range", "combined"],
)
def test_filters_apply_inside_knn_and_count(city_backend: SearchBackend, filters: Filters, predicate) -> None:  # type: ignore[no-untyped-def]  # as mask
    keep = mask(predicate)
    assert city_backend.count(filters) == int(keep.sum())
    query = VECTORS[42]
    hits = city_backend.knn(query, k=10, num_candidates=2_000, filters=filters)
    assert [h.id for h in hits] == exact_top(query, 10, keep)


def test_a_source_filter_ignores_case_as_a_city_filter_does(backend: SearchBackend) -> None:
    """Sources are stored as ingested ("Instagram", "instagram"); `source:` matches them whatever
    the case of their ASCII letters, on an index written as before (no re-ingest). Other letters
    compare exactly, alike on both backends (Elasticsearch's case_insensitive folds A-Z only)."""
    sources = ["Instagram", "instagram", "INSTAGRAM", "Flickr", "Ärzte-Feed", None]
    vectors = unit_vectors(len(sources), DIM, seed=21)
    posts = [doc(f"s{i}", v, caption="a bike", source=s) for i, (v, s) in enumerate(zip(vectors, sources, strict=True))]
    backend.upsert(posts)
    backend.refresh()
    for wanted, expected in [
        (("iNsTaGrAm",), {"s0", "s1", "s2"}),
        (("instagram",), {"s0", "s1", "s2"}),
        (("FLICKR", "ÄRZTE-FEED"), {"s3", "s4"}),
        (("Ärzte-feed",), {"s4"}),
        (("ärzte-feed",), set()),  # Ä is not an ASCII letter
        (("flick",), set()),  # whole values, as before
    ]:
        filters = Filters(sources=wanted)
        assert backend.count(filters) == len(expected), wanted
        assert {h.id for h in backend.knn(vectors[0], k=10, filters=filters)} == expected, wanted
        assert {h.id for h in backend.keyword("bike", k=10, filters=filters)} == expected, wanted


def test_count_cities_and_mean_vector(city_backend: SearchBackend) -> None:
    assert city_backend.count() == len(CORPUS)
    cities = city_backend.cities()
    expected = {c: int(mask(lambda p, c=c: p.city.lower() == c).sum()) for c in (*BIG_CITIES, RARE_CITY)}
    assert dict(cities) == expected
    assert [n for _, n in cities] == sorted(expected.values(), reverse=True)
    paris = mask(lambda p: p.city.lower() == "paris")
    mean = city_backend.mean_vector(Filters(cities=("paris",)))
    assert mean is not None and mean.dtype == np.float32
    np.testing.assert_allclose(mean, VECTORS[paris].mean(axis=0), atol=1e-5)
    assert city_backend.mean_vector(Filters(cities=("atlantis",))) is None


def test_iter_documents_yields_everything_once(city_backend: SearchBackend) -> None:
    seen = {}
    for document in city_backend.iter_documents(batch_size=300):
        assert document.id not in seen
        seen[document.id] = document
    assert set(seen) == {d.id for d in CORPUS}
    np.testing.assert_allclose(seen["p1234"].vector, VECTORS[1234], atol=1e-6)
