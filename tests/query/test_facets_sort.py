"""Facets, trends and newest-first through SearchService, on every backend, against brute-force counts
over the hand-set geometry (query_geometry.py)."""

from __future__ import annotations

from collections import Counter

import pytest
from jointspace.query.service import SearchService

from jointspace.errors import QueryError
from jointspace.records import Filters, Post
from tests.query.query_geometry import documents

DOCS = {d.id: d for d in documents()}


def matching(
    service: SearchService, expression: str, min_score: float | None = None, keep=lambda p: True
) -> list[Post]:  # type: ignore[no-untyped-def]  # fixtures' types left to pytest
    """The match set by brute force: every post kept (the default facet_depth exceeds the
    collection) whose similarity passes min_score."""
    query = service.query_vector(expression)
    assert service.settings.facet_depth >= len(DOCS)
    return [
        d.post for d in DOCS.values() if keep(d.post) and (min_score is None or float(d.vector @ query) >= min_score)
    ]


def top_counts(values: list[str], size: int) -> list[dict[str, object]]:
    ordered = sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0]))[:size]
    return [{"value": v, "count": n} for v, n in ordered]


def facet_json(result) -> dict[str, list[dict[str, object]]]:  # type: ignore[no-untyped-def]  # as above
    return {
        name: [{"value": b.value, "count": b.count} for b in buckets] for name, buckets in result.facets.fields.items()
    }


def test_facets_count_the_posts_above_min_score(service: SearchService) -> None:
    result = service.search("train+snow", k=3, min_score=0.45, facets="city,hashtags,source,month")
    posts = matching(service, "train+snow", 0.45)
    assert 10 < len(posts) < len(DOCS)
    assert result.facets is not None and result.facets.matching == len(posts)
    size = service.settings.facet_size
    assert facet_json(result) == {
        "city": top_counts([p.city for p in posts], size),
        "hashtags": top_counts([t for p in posts for t in p.hashtags], size),
        "source": top_counts([p.source for p in posts], size),
        "month": sorted(
            ({"value": m, "count": n} for m, n in Counter(p.created_at.strftime("%Y-%m") for p in posts).items()),
            key=lambda b: b["value"],
        ),
    }
    assert result.explain["match"] == {
        "kind": "semantic",
        "depth": service.settings.max_num_candidates,
        "min_score": 0.45,
        "matching": len(posts),
    }
    assert len(result.hits) == 3  # the page itself is unchanged by facets


def test_facets_without_a_cut_off_count_the_nearest_facet_depth(service: SearchService) -> None:
    result = service.search("beach", k=2, facets=["city"], filters=Filters(cities=("sydney", "oslo")))
    posts = matching(service, "beach", keep=lambda p: p.city in ("sydney", "oslo"))
    assert result.facets is not None and result.facets.matching == len(posts)
    assert facet_json(result)["city"] == top_counts([p.city for p in posts], 10)
    assert result.explain["match"]["depth"] == service.settings.facet_depth


def test_hybrid_counts_its_semantic_side_and_keyword_its_matches(service: SearchService) -> None:
    hybrid = service.search("food+train", mode="hybrid", min_score=0.5, facets="city")
    posts = matching(service, "food+train", 0.5)
    assert hybrid.facets is not None and hybrid.facets.matching == len(posts) > 0
    assert hybrid.explain["match"]["kind"] == "semantic"
    # Keyword: every post whose caption or hashtags hold the word (all, below facet_depth), minus
    # those mentioning an excluded word.
    keyword = service.search("train", mode="keyword", facets="city", k=2)
    assert keyword.facets is not None and keyword.explain["match"]["kind"] == "keyword"
    assert facet_json(keyword)["city"] == [{"value": "london", "count": 12}, {"value": "oslo", "count": 3}]
    without_snow = service.search("train-snow", mode="keyword", facets="city", sort="newest", k=5, page=3)
    assert facet_json(without_snow)["city"] == [{"value": "london", "count": 12}]
    # Same date for all twelve: newest first falls back on the id, and page 3 of 5 holds the last two.
    assert [h.id for h in without_snow.hits] == ["t10", "t11"] and without_snow.total == 12
    assert not without_snow.has_more
    with pytest.raises(QueryError, match="unknown facet 'colour'"):
        service.search("food", facets="city,colour")
    with pytest.raises(QueryError, match="unknown sort"):
        service.search("food", sort="oldest")


def test_newest_pages_partition_the_match_set(service: SearchService) -> None:
    posts = matching(service, "food", 0.55)
    expected = [p.id for p in sorted(posts, key=lambda p: (-p.created_at.timestamp(), p.id))]
    assert len(expected) > 12
    seen: list[str] = []
    page = 1
    while True:
        result = service.search("food", k=5, page=page, min_score=0.55, sort="newest")
        assert result.total == len(expected) and result.sort == "newest"
        assert all(h.score >= 0.55 for h in result.hits)
        seen += [h.id for h in result.hits]
        if not result.has_more:
            break
        page += 1
    assert page == -(-len(expected) // 5)
    assert len(seen) == len(set(seen)) and seen == expected  # no post twice, none missing, in order
    assert result.explain["sort"] == "newest" and result.explain["match"]["matching"] == len(expected)


def test_newest_without_a_cut_off_orders_the_nearest_by_date(service: SearchService) -> None:
    result = service.search("bike", k=len(DOCS), sort="newest", facets="month")
    dated = sorted(DOCS.values(), key=lambda d: (-d.post.created_at.timestamp(), d.id))
    assert [h.id for h in result.hits] == [d.id for d in dated]
    assert result.hits[0].id == "21" and result.hits[-1].id == "26"  # 2019, then 2018s, then 2017
    query = service.query_vector("bike")
    for hit in result.hits:
        assert hit.score == pytest.approx(float(DOCS[hit.id].vector @ query), abs=2e-3)
    assert result.facets is not None and result.facets.matching == len(DOCS)


@pytest.mark.parametrize(("by", "interval"), [("city", "year"), ("hashtags", "month")])
def test_trends_count_and_share_against_brute_force(service: SearchService, by: str, interval: str) -> None:
    trend = service.trends("train+snow+beach", by=by, interval=interval, min_score=0.3)
    posts = matching(service, "train+snow+beach", 0.3)
    fmt = {"year": "%Y", "month": "%Y-%m"}[interval]

    def keys(p: Post) -> list[str]:
        return [p.city] if by == "city" else list(p.hashtags)

    top = [b["value"] for b in top_counts([k for p in posts for k in keys(p)], service.settings.trend_max_series)]
    matched = Counter((k, p.created_at.strftime(fmt)) for p in posts for k in keys(p))
    totals = Counter((k, d.post.created_at.strftime(fmt)) for d in DOCS.values() for k in keys(d.post))
    body = trend.to_json()
    assert body["matching"] == len(posts) and [s["key"] for s in body["series"]] == top
    for series in body["series"]:
        want = [
            (period, matched.get((series["key"], period), 0), n)
            for (key, period), n in sorted(totals.items())
            if key == series["key"]
        ]
        assert [(p["period"], p["count"], p["total"]) for p in series["points"]] == want
        for point in series["points"]:
            assert point["share"] == pytest.approx(point["count"] / point["total"], abs=1e-6)
    with pytest.raises(QueryError, match="cannot group by 'author'"):
        service.trends("train", by="author")
    with pytest.raises(QueryError, match="unknown interval 'week'"):
        service.trends("train", interval="week")
