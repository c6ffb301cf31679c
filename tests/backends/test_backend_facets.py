"""Facets, trends and newest-first (SearchBackend.facets / trends / newest), identical on the embedded
store and on Elasticsearch, every count checked against a brute-force count over the corpus."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
import pytest

from jointspace.protocols import SearchBackend
from jointspace.records import FACET_FIELDS, Filters, MatchSet, Post, facet_key
from jointspace.settings import Settings
from tests.backends.backend_corpus import DIM, START, city_corpus, doc, unit_vectors

CORPUS = city_corpus()
VECTORS = np.stack([d.vector for d in CORPUS])
DEPTH = Settings().facet_depth  # the default a user gets (1,000 of the 2,000 posts)
SIZE = Settings().facet_size
PERIOD = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}


def brute_match(
    query: np.ndarray, depth: int, keep: Callable[[Post], bool] = lambda p: True, min_score: float | None = None
) -> list[int]:
    """Indices of the match set, best first: the `depth` nearest among those kept, ≥ min_score."""
    scores = VECTORS @ (query / np.linalg.norm(query))
    order = [i for i in np.argsort(-scores) if keep(CORPUS[i].post)][:depth]
    return [int(i) for i in order if min_score is None or scores[i] >= min_score]


def values(post: Post, field: str) -> list[str]:
    if field == "city":
        return [post.city.lower()] if post.city else []
    if field == "hashtags":
        return sorted({t.lower() for t in post.hashtags})
    if field == "source":
        return [facet_key("source", post.source)] if post.source else []
    return [post.created_at.strftime("%Y-%m")] if post.created_at else []


def brute_facets(indices: list[int], field: str, size: int) -> list[tuple[str, int]]:
    counts = Counter(v for i in indices for v in values(CORPUS[i].post, field))
    if field == "month":
        return sorted(counts.items())
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]


def gap_threshold(query: np.ndarray, near: float) -> float:
    """A min_score near `near` that lies in the middle of a gap between corpus scores, so float
    rounding in either engine cannot move a post across it."""
    scores = np.sort(VECTORS @ (query / np.linalg.norm(query)))
    around = scores[(scores > near - 0.05) & (scores < near + 0.05)]
    gaps = np.diff(around)
    best = int(np.argmax(gaps))
    assert gaps[best] > 1e-4
    return float((around[best] + around[best + 1]) / 2)


def assert_depth_cut_is_clear(query: np.ndarray, depth: int, keep: np.ndarray | None = None) -> None:
    """The depth-th and next scores differ clearly, so both engines pick the same set."""
    scores = VECTORS @ (query / np.linalg.norm(query))
    if keep is not None:
        scores = scores[keep]
    ordered = np.sort(scores)[::-1]
    if len(ordered) > depth:
        assert ordered[depth - 1] - ordered[depth] > 1e-6


def as_pairs(buckets) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]  # either backend's buckets
    return [(b.value, b.count) for b in buckets]


def test_facets_count_the_default_depth_of_nearest_posts(city_backend: SearchBackend) -> None:
    query = VECTORS[42]
    assert_depth_cut_is_clear(query, DEPTH)
    counts = city_backend.facets(MatchSet(query, DEPTH), FACET_FIELDS, SIZE)
    expected = brute_match(query, DEPTH)
    assert counts.matching == len(expected) == DEPTH
    for field in FACET_FIELDS:
        assert as_pairs(counts.fields[field]) == brute_facets(expected, field, SIZE), field
    # The counts are not the whole index's: the match set is half of it.
    assert sum(b.count for b in counts.fields["city"]) == DEPTH


def test_facets_with_filters_and_min_score(city_backend: SearchBackend) -> None:
    query = VECTORS[7] + VECTORS[8]
    threshold = gap_threshold(query, 0.2)
    filters = Filters(cities=("Paris", "berlin"), after=START + timedelta(days=200))

    def keep(p: Post) -> bool:
        return p.city.lower() in {"paris", "berlin"} and p.created_at >= START + timedelta(days=200)

    match = MatchSet(query, 10_000, filters, min_score=threshold)
    counts = city_backend.facets(match, ["city", "hashtags", "month"], 3)
    expected = brute_match(query, 10_000, keep, threshold)
    assert 20 < counts.matching == len(expected) < 400
    assert as_pairs(counts.fields["city"]) == brute_facets(expected, "city", 3)
    assert as_pairs(counts.fields["hashtags"]) == brute_facets(expected, "hashtags", 3)
    assert as_pairs(counts.fields["month"]) == brute_facets(expected, "month", 3)
    # A cut-off nothing passes: an empty match set, not an error.
    nothing = city_backend.facets(MatchSet(query, DEPTH, min_score=1.5), FACET_FIELDS, SIZE)
    assert nothing.matching == 0 and all(v == [] for v in nothing.fields.values())


@pytest.mark.parametrize(("by", "interval"), [("city", "month"), ("hashtags", "year"), ("source", "day")])
def test_trends_count_and_share_per_value_and_period(city_backend: SearchBackend, by: str, interval: str) -> None:
    query = VECTORS[99]
    filters = Filters(before=START + timedelta(days=900))

    def keep(p: Post) -> bool:
        return p.created_at < START + timedelta(days=900)

    threshold = gap_threshold(query, 0.25)
    match = MatchSet(query, 10_000, filters, min_score=threshold)
    buckets = city_backend.trends(match, by, interval, size=4)
    expected = brute_match(query, 10_000, keep, threshold)
    assert len(expected) > 50

    def key_periods(indices) -> Counter:  # type: ignore[no-untyped-def]  # as as_pairs
        return Counter(
            (v, CORPUS[i].post.created_at.strftime(PERIOD[interval]))
            for i in indices
            for v in values(CORPUS[i].post, by)
        )

    top = [v for v, _ in brute_facets(expected, by, 4)]
    matched = key_periods(expected)
    totals = key_periods([i for i, d in enumerate(CORPUS) if keep(d.post)])
    want = [(v, p, matched.get((v, p), 0), n) for v in top for (key, p), n in sorted(totals.items()) if key == v]
    assert [(b.key, b.period, b.count, b.total) for b in buckets] == want
    assert all(0 <= b.count <= b.total for b in buckets)
    assert sum(b.count for b in buckets) == sum(n for (v, _), n in matched.items() if v in top)
    assert city_backend.trends(MatchSet(query, DEPTH, filters, min_score=1.5), by, interval, 4) == []


def test_newest_pages_are_stable_and_complete(city_backend: SearchBackend) -> None:
    query = VECTORS[5]
    threshold = gap_threshold(query, 0.35)
    match = MatchSet(query, 10_000, Filters(sources=("feed-a",)), min_score=threshold)
    expected = brute_match(query, 10_000, lambda p: p.source == "feed-a", threshold)
    expected.sort(key=lambda i: (-CORPUS[i].post.created_at.timestamp(), CORPUS[i].id))
    seen: list[str] = []
    for offset in range(0, len(expected) + 7, 7):
        page = city_backend.newest(match, 7, offset)
        assert page.total == len(expected)
        seen += [h.id for h in page.hits]
        for hit in page.hits:
            assert hit.score >= threshold
            assert hit.score == pytest.approx(
                float(
                    VECTORS[int(np.flatnonzero([d.id == hit.id for d in CORPUS])[0])] @ (query / np.linalg.norm(query))
                ),
                abs=2e-3,
            )
    assert len(seen) == len(set(seen))  # no post on two pages
    assert seen == [CORPUS[i].id for i in expected]  # none missing, newest first
    assert [h.id for h in city_backend.newest(MatchSet(query, 12), 12).hits] == [
        CORPUS[i].id
        for i in sorted(brute_match(query, 12), key=lambda i: (-CORPUS[i].post.created_at.timestamp(), CORPUS[i].id))
    ]


def test_newest_puts_undated_posts_last_and_breaks_ties_by_id(backend: SearchBackend) -> None:
    vectors = unit_vectors(6, DIM, seed=11)
    same = datetime(2024, 5, 1, 12, 0, 0)
    backend.upsert(
        [
            doc("b", vectors[0], created_at=same),
            doc("a", vectors[1], created_at=same),
            doc("c", vectors[2], created_at=same + timedelta(seconds=1)),
            doc("undated-2", vectors[3]),
            doc("undated-1", vectors[4]),
            doc("old", vectors[5], created_at=datetime(1999, 1, 1)),
        ]
    )
    backend.refresh()
    match = MatchSet(vectors[0], 100)
    pages = [backend.newest(match, 2, offset) for offset in (0, 2, 4, 6)]
    assert [[h.id for h in page.hits] for page in pages] == [["c", "a"], ["b", "old"], ["undated-1", "undated-2"], []]
    assert {page.total for page in pages} == {6}
    facets = backend.facets(match, ["month", "city"], 5)
    assert as_pairs(facets.fields["month"]) == [("1999-01", 1), ("2024-05", 3)]
    assert facets.fields["city"] == [] and facets.matching == 6


def test_keyword_match_sets_count_and_order_the_matching_posts(backend: SearchBackend) -> None:
    vectors = unit_vectors(40, DIM, seed=12)
    captions = ["a dog in the park", "dogs at the beach", "a cat and a dog", "the park at night", "snow"]
    docs = [
        doc(
            f"k{i:02d}",
            vectors[i],
            caption=captions[i % 5],
            hashtags=("Beach",) if i % 4 == 0 else (),
            city=("oslo", "rome", "lima")[i % 3],
            created_at=START + timedelta(days=i % 7, hours=i),
        )
        for i in range(40)
    ]
    backend.upsert(docs)
    backend.refresh()

    def brute(words: set[str], excluded: set[str]) -> list[Post]:
        def tokens(p: Post) -> set[str]:
            return set(p.caption.lower().split()) | {t.lower() for t in p.hashtags}

        # "dog" also finds "dogs" through stemming (both backends); exclusion is by whole word.
        stems = {w.rstrip("s") for w in words}
        return [
            d.post for d in docs if {t.rstrip("s") for t in tokens(d.post)} & stems and not tokens(d.post) & excluded
        ]

    match = MatchSet(None, DEPTH, Filters(cities=("oslo", "rome")), text="dog", exclude=("beach",))
    expected = [p for p in brute({"dog"}, {"beach"}) if p.city in ("oslo", "rome")]
    counts = backend.facets(match, ["city", "hashtags", "month"], 10)
    assert counts.matching == len(expected) > 5
    assert as_pairs(counts.fields["city"]) == sorted(
        Counter(p.city for p in expected).items(), key=lambda kv: (-kv[1], kv[0])
    )
    assert counts.fields["hashtags"] == []  # every #beach post was excluded
    page = backend.newest(match, 100)
    assert [h.id for h in page.hits] == [
        p.id for p in sorted(expected, key=lambda p: (-p.created_at.timestamp(), p.id))
    ]
    assert all(h.score > 0 for h in page.hits)  # BM25
    # The depth bounds the set (which posts make the cut is each engine's BM25: only the count is common).
    assert backend.facets(MatchSet(None, 5, text="park dog"), ["city"], 10).matching == 5
    assert backend.newest(MatchSet(None, 5, text="park dog"), 10).total == 5
    trend = backend.trends(MatchSet(None, DEPTH, text="park"), "city", "day", 3)
    parks = brute({"park"}, set())
    assert sum(b.count for b in trend) == len(parks)
    assert backend.facets(MatchSet(None, DEPTH, text="   "), ["city"], 10).matching == 0


def test_source_buckets_fold_ascii_case_as_the_source_filter_does(backend: SearchBackend) -> None:
    """Sources are stored as ingested; a facet or trend takes `Instagram`, `instagram` and
    `INSTAGRAM` as one bucket keyed `instagram` (the source filter ignores the case of ASCII letters),
    on an index written as before, and filtering by a bucket's key finds exactly its posts. Other
    letters stay apart, as in the filter (Ä is not an ASCII letter)."""
    sources = ["Instagram", "instagram", "INSTAGRAM", "Flickr", "flickr", "FLICKR", "Ärzte-Feed", "ärzte-feed", None]
    years = [2023, 2023, 2024, 2023, 2024, 2024, 2023, 2023, 2023]
    # Post i lies ever further from the query, so the 5 nearest are s0..s4.
    query = np.eye(DIM, dtype=np.float32)[0]
    docs = []
    for i, (source, year) in enumerate(zip(sources, years, strict=True)):
        cos = 0.95 - 0.05 * i
        vector = cos * query + np.sqrt(1 - cos * cos) * np.eye(DIM, dtype=np.float32)[i + 1]
        docs.append(doc(f"s{i}", vector, source=source, created_at=datetime(year, 3, 1 + i)))
    backend.upsert(docs)
    backend.refresh()

    every = MatchSet(query, 100)
    facets = backend.facets(every, ["source"], 10)
    buckets = [("flickr", 3), ("instagram", 3), ("Ärzte-feed", 1), ("ärzte-feed", 1)]  # ties by key
    assert as_pairs(facets.fields["source"]) == buckets
    assert as_pairs(backend.facets(every, ["source"], 2).fields["source"]) == buckets[:2]
    for key, n in buckets:  # a click on a bucket: the filter by its key
        assert backend.count(Filters(sources=(key,))) == n, key
        clicked = backend.facets(MatchSet(query, 100, Filters(sources=(key,))), ["source"], 10)
        assert as_pairs(clicked.fields["source"]) == [(key, n)], key

    nearest = MatchSet(query, 5)  # Instagram x3, Flickr, flickr; FLICKR counts in the totals only
    trend = backend.trends(nearest, "source", "year", 2)
    assert [(b.key, b.period, b.count, b.total) for b in trend] == [
        ("instagram", "2023", 2, 2),
        ("instagram", "2024", 1, 1),
        ("flickr", "2023", 1, 1),
        ("flickr", "2024", 1, 2),
    ]
