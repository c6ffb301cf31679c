"""The match set behind facets, trends and newest-first order, and the checks on their parameters.

A search ranks posts; facets, trends and `sort=newest` need the *set* of posts that match, which
the backend computes (`SearchBackend.facets / trends / newest`). The set is the kNN hits of the
query vector with the search's filters inside: those whose similarity passes `min_score` (looked
for among `max_num_candidates` nearest, the deepest kNN Elasticsearch runs), or without a cut-off
the `facet_depth` nearest. A keyword search's set is its `facet_depth` best BM25 matches, minus
the posts that mention an excluded word (hybrid uses its semantic side).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from jointspace.choices import SORT_ORDERS, SortOrder
from jointspace.errors import QueryError
from jointspace.records import FACET_FIELDS, TREND_INTERVALS, TREND_KEYS, FacetCounts, Filters, MatchSet, TrendBucket
from jointspace.settings import Settings

from .keyword import KeywordQuery

Sort = SortOrder
SORTS: tuple[str, ...] = SORT_ORDERS


def match_set(query: np.ndarray, filters: Filters, min_score: float | None, settings: Settings) -> MatchSet:
    depth = settings.max_num_candidates if min_score is not None else settings.facet_depth
    return MatchSet(vector=query, depth=min(depth, settings.max_num_candidates), filters=filters, min_score=min_score)


def keyword_match_set(keywords: KeywordQuery, filters: Filters, settings: Settings) -> MatchSet:
    return MatchSet(
        vector=None,
        depth=min(settings.facet_depth, settings.max_num_candidates),
        filters=filters,
        text=keywords.text,
        exclude=keywords.excluded,
    )


def facet_fields(fields: str | Sequence[str] | None) -> tuple[str, ...]:
    """`"city,hashtags"` or `["city", "hashtags"]` → the distinct field names in order; QueryError
    naming an unknown one. Empty or None: no facets."""
    if fields is None:
        return ()
    parts = fields.split(",") if isinstance(fields, str) else [p for f in fields for p in str(f).split(",")]
    names = [p.strip().lower() for p in parts if p.strip()]
    for name in names:
        if name not in FACET_FIELDS:
            raise QueryError(f"unknown facet {name!r}: use any of {', '.join(FACET_FIELDS)}")
    return tuple(dict.fromkeys(names))


def check_sort(sort: str) -> Sort:
    if sort not in SORTS:
        raise QueryError(f"unknown sort {sort!r}: use relevance or newest")
    return sort  # type: ignore[return-value]  # one of SORTS, the Literal's values, as tested above


def check_trend(by: str, interval: str) -> None:
    if by not in TREND_KEYS:
        raise QueryError(f"trends cannot group by {by!r}: use one of {', '.join(TREND_KEYS)}")
    if interval not in TREND_INTERVALS:
        raise QueryError(f"unknown interval {interval!r}: use one of {', '.join(TREND_INTERVALS)}")


def match_json(match: MatchSet, matching: int) -> dict[str, Any]:
    """What the explanation says about the match set."""
    return {
        "kind": "semantic" if match.vector is not None else "keyword",
        "depth": match.depth,
        "min_score": match.min_score,
        "matching": matching,
    }


def facets_json(counts: FacetCounts) -> dict[str, Any]:
    """`{"matching": N, "fields": {"city": [{"value", "count"}, ...], ...}}` (API and CLI alike)."""
    return {
        "matching": counts.matching,
        "fields": {
            name: [{"value": b.value, "count": b.count} for b in buckets] for name, buckets in counts.fields.items()
        },
    }


@dataclass(slots=True)
class TrendResult:
    """Per value of `by` (most frequent in the match set first) and period: posts in the match set,
    all posts passing the filters, and the share."""

    expression: str
    by: str
    interval: str
    matching: int
    match: MatchSet
    buckets: list[TrendBucket]
    explain: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        series: dict[str, list[dict[str, Any]]] = {}
        for b in self.buckets:
            series.setdefault(b.key, []).append(
                {
                    "period": b.period,
                    "count": b.count,
                    "total": b.total,
                    "share": round(b.count / b.total, 6) if b.total else 0.0,
                }
            )
        return {
            "query": self.expression,
            "by": self.by,
            "interval": self.interval,
            "matching": self.matching,
            "depth": self.match.depth,
            "min_score": self.match.min_score,
            "series": [
                {"key": key, "count": sum(p["count"] for p in points), "points": points}
                for key, points in series.items()
            ],
            "explain": self.explain,
        }
