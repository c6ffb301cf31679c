"""GET /trends (and facets and sort on /search) on both backends, against brute-force counts over the
indexed corpus's own vectors."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import numpy as np

from tests.api.api_support import Api


def similarities(api: Api, expression: str) -> dict[str, tuple[float, dict]]:
    """id → (similarity to the query, the corpus post), from the vectors the backend holds."""
    query = api.container.search.query_vector(expression)
    posts = {p["id"]: p for p in api.corpus.posts}
    return {d.id: (float(np.dot(d.vector, query)), posts[d.id]) for d in api.container.backend.iter_documents()}


def middle_cut(scores: list[float]) -> float:
    """A min_score halfway between two neighbouring similarities near the median."""
    ordered = sorted(scores)
    i = len(ordered) // 2
    return (ordered[i - 1] + ordered[i]) / 2


def test_trends_by_city_and_month(api: Api) -> None:
    sims = similarities(api, "dog")
    cut = middle_cut([s for s, _ in sims.values()])
    r = api.client.get("/trends", params={"q": "dog", "by": "city", "interval": "month", "min_score": cut})
    assert r.status_code == 200, r.text
    body = r.json()
    matched = [p for s, p in sims.values() if s >= cut]
    assert body["matching"] == len(matched) and 0 < len(matched) < len(sims)
    assert (body["by"], body["interval"], body["min_score"]) == ("city", "month", cut)

    def month(p: dict[str, Any]) -> str:
        return datetime.fromisoformat(p["created_at"]).strftime("%Y-%m")

    per_city = Counter(p["city"] for p in matched)
    assert [s["key"] for s in body["series"]] == sorted(per_city, key=lambda c: (-per_city[c], c))
    counts = Counter((p["city"], month(p)) for p in matched)
    totals = Counter((p["city"], month(p)) for _, p in sims.values())
    for series in body["series"]:
        assert series["count"] == per_city[series["key"]]
        want = [
            (m, counts.get((c, m), 0), n, counts.get((c, m), 0) / n)
            for (c, m), n in sorted(totals.items())
            if c == series["key"]
        ]
        got = [(p["period"], p["count"], p["total"], p["share"]) for p in series["points"]]
        assert [g[:3] for g in got] == [w[:3] for w in want]
        assert all(abs(g[3] - w[3]) < 1e-6 for g, w in zip(got, want, strict=True))


def test_trends_refuse_bad_input(api: Api) -> None:
    assert api.client.get("/trends", params={"q": "dog", "by": "author"}).status_code == 422
    assert api.client.get("/trends", params={"q": "dog", "interval": "week"}).status_code == 422
    bad = api.client.get("/trends", params={"q": "dog+(park"})
    assert bad.status_code == 400 and bad.json()["position"] is not None
    assert api.client.get("/trends").status_code == 422  # q is required
    long = api.client.get("/trends", params={"q": "dog+" * 300 + "dog"})  # the search's own bound
    assert long.status_code == 400 and "longer than" in long.json()["message"]


def test_search_facets_count_the_matching_posts(api: Api) -> None:
    sims = similarities(api, "dog")
    cut = middle_cut([s for s, _ in sims.values()])
    r = api.client.get("/search", params={"q": "dog", "k": 3, "min_score": cut, "facets": "city,hashtags,month"})
    assert r.status_code == 200, r.text
    body = r.json()
    matched = [p for s, p in sims.values() if s >= cut]
    assert body["facets"]["matching"] == len(matched) and len(body["hits"]) == 3

    def top(values: Iterable[str]) -> list[dict[str, object]]:
        ranked = sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0]))
        return [{"value": v, "count": n} for v, n in ranked[: api.settings.facet_size]]

    assert body["facets"]["fields"]["city"] == top(p["city"] for p in matched)
    assert body["facets"]["fields"]["hashtags"] == top(t.lower() for p in matched for t in set(p["hashtags"]))
    months = Counter(datetime.fromisoformat(p["created_at"]).strftime("%Y-%m") for p in matched)
    assert body["facets"]["fields"]["month"] == [{"value": m, "count": n} for m, n in sorted(months.items())]
    # Repeated parameters work as well as a comma-separated list; no facets asked, none given.
    repeated = api.client.get(
        "/search", params=[("q", "dog"), ("min_score", cut), ("facets", "city"), ("facets", "month")]
    ).json()
    assert set(repeated["facets"]["fields"]) == {"city", "month"}
    assert api.client.get("/search", params={"q": "dog"}).json()["facets"] is None
    bad = api.client.get("/search", params={"q": "dog", "facets": "colour"})
    assert bad.status_code == 400 and "unknown facet 'colour'" in bad.json()["message"]
    # Facets asked for but none named: refused (was answered without facets), naming the valid ones.
    for blank in ("", " ", ","):
        empty = api.client.get("/search", params={"q": "dog", "facets": blank})
        assert empty.status_code == 422 and set(empty.json()) == {"error", "message", "position", "suggestions"}
        assert empty.json()["message"] == "facets: needs a facet name: any of city, hashtags, source, month"


def test_search_newest_first_pages_are_stable(api: Api) -> None:
    sims = similarities(api, "park")
    cut = middle_cut([s for s, _ in sims.values()])
    matched = [p for s, p in sims.values() if s >= cut]
    expected = [
        p["id"] for p in sorted(matched, key=lambda p: (-datetime.fromisoformat(p["created_at"]).timestamp(), p["id"]))
    ]
    seen: list[str] = []
    page = 1
    while True:
        body = api.client.get(
            "/search", params={"q": "park", "k": 4, "page": page, "min_score": cut, "sort": "newest"}
        ).json()
        assert body["sort"] == "newest" and body["total"] == len(expected)
        seen += [h["id"] for h in body["hits"]]
        if not body["has_more"]:
            break
        page += 1
    assert page == -(-len(expected) // 4) and seen == expected  # none twice, none missing, newest first


def test_photo_search_takes_facets_and_sort(api: Api) -> None:
    photo = api.corpus.root / api.corpus.posts[0]["image"]
    with photo.open("rb") as f:
        r = api.client.post(
            "/search", files={"image": ("p.png", f, "image/png")}, data={"facets": "city", "sort": "newest", "k": "30"}
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["sort"] == "newest" and body["facets"]["matching"] == len(api.corpus.posts)
    dates = [h["created_at"] for h in body["hits"]]
    assert len(dates) == len(api.corpus.posts) and dates == sorted(dates, reverse=True)
    assert sum(b["count"] for b in body["facets"]["fields"]["city"]) == len(api.corpus.posts)
    with photo.open("rb") as f:  # facets naming none: refused in the form as in the query string
        empty = api.client.post("/search", files={"image": ("p.png", f, "image/png")}, data={"facets": ","})
    assert empty.status_code == 422 and "facets: needs a facet name: any of city" in empty.json()["message"]


def test_keyword_search_counts_its_text_matches(api: Api) -> None:
    body = api.client.get(
        "/search", params={"q": "dog-park", "mode": "keyword", "k": 100, "facets": "city", "sort": "newest"}
    ).json()
    # Fewer matches than k and than facet_depth: the page holds the whole match set.
    hits = body["hits"]
    assert hits and body["facets"]["matching"] == len(hits) == body["total"]
    assert all("park" not in h["caption"].lower().split() and "park" not in h["hashtags"] for h in hits)
    cities = Counter(h["city"] for h in hits)
    assert body["facets"]["fields"]["city"] == [
        {"value": c, "count": n} for c, n in sorted(cities.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    dates = [h["created_at"] for h in hits]
    assert dates == sorted(dates, reverse=True) and body["explain"]["match"]["kind"] == "keyword"
