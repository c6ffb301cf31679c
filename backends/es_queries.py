"""Pure builders of Elasticsearch request bodies (plain dicts, no client), so tests can assert them exactly."""

from __future__ import annotations

from typing import Any

import numpy as np
from jointspace.es_mappings.template import VECTOR_FIELD

from jointspace.records import Filters, facet_key

KEYWORD_FIELDS = ("caption", "caption.std", "hashtags.text")


def filter_clauses(filters: Filters | None) -> list[dict[str, Any]]:
    """Filter clauses (AND between fields, any of the values within one), [] when unrestricted."""
    if filters is None:
        return []
    clauses: list[dict[str, Any]] = []
    if filters.cities:
        clauses.append({"terms": {"city": list(filters.cities)}})
    if filters.hashtags:
        clauses.append({"terms": {"hashtags": list(filters.hashtags)}})
    if filters.sources:
        clauses.append(source_clause(filters.sources))
    if filters.after or filters.before:
        bounds: dict[str, str] = {}
        if filters.after:
            bounds["gte"] = filters.after.isoformat()
        if filters.before:
            bounds["lt"] = filters.before.isoformat()
        clauses.append({"range": {"created_at": bounds}})
    return clauses


def source_clause(sources: tuple[str, ...]) -> dict[str, Any]:
    """Any of the sources, ignoring the case of ASCII letters (Filters.sources): `source` is a plain
    keyword holding the value as ingested, so indexes written before need no re-ingest; a `terms`
    query has no `case_insensitive` (a `term` has)."""
    if len(sources) == 1:
        return {"term": {"source": {"value": sources[0], "case_insensitive": True}}}
    return {
        "bool": {
            "should": [{"term": {"source": {"value": s, "case_insensitive": True}}} for s in sources],
            "minimum_should_match": 1,
        }
    }


def knn_clause(
    vector: np.ndarray, k: int, num_candidates: int, filters: Filters | None = None, rescore_oversample: float = 0.0
) -> dict[str, Any]:
    """The top-level `knn` section, with the filters inside it (pre-filtering: k hits whenever k match).

    `rescore_vector` re-ranks oversample × k quantised candidates by the float vectors (bbq_hnsw, int8_hnsw).
    """
    clause: dict[str, Any] = {
        "field": VECTOR_FIELD,
        "query_vector": [float(x) for x in vector],
        "k": k,
        "num_candidates": num_candidates,
    }
    if clauses := filter_clauses(filters):
        clause["filter"] = clauses
    if rescore_oversample > 0:
        clause["rescore_vector"] = {"oversample": rescore_oversample}
    return clause


def rescore_oversample(oversample: float, k: int, ranked_top: int | None) -> float:
    """The `rescore_vector.oversample` for k hits of which the caller ranks `ranked_top` (None: all):
    oversample × ranked_top candidates re-scored, never fewer than k, so that every hit's score is
    exact. 0 (no re-scoring) stays 0."""
    if oversample <= 0 or ranked_top is None or ranked_top >= k:
        return oversample
    return max(1.0, round(oversample * max(ranked_top, 1) / k, 3))


def keyword_query(text: str, filters: Filters | None = None) -> dict[str, Any]:
    """BM25 over the caption (english and standard analyzers) and the hashtags, filters in `bool.filter`."""
    query: dict[str, Any] = {"bool": {"must": [{"multi_match": {"query": text, "fields": list(KEYWORD_FIELDS)}}]}}
    if clauses := filter_clauses(filters):
        query["bool"]["filter"] = clauses
    return query


def keyword_among_query(text: str, filters: Filters | None, post_ids: list[str]) -> dict[str, Any]:
    """`keyword_query` restricted to the documents `post_ids` (an `ids` clause in `bool.filter`)."""
    query = keyword_query(text, filters)
    query["bool"].setdefault("filter", []).append({"ids": {"values": post_ids}})
    return query


def filter_query(filters: Filters | None) -> dict[str, Any]:
    """A query matching exactly the filtered documents (match_all when unrestricted)."""
    clauses = filter_clauses(filters)
    return {"bool": {"filter": clauses}} if clauses else {"match_all": {}}


def cities_aggregation(size: int = 10_000) -> dict[str, Any]:
    """Posts per (lower-cased) city, most first; `size` bounds how many cities come back."""
    return {"cities": {"terms": {"field": "city", "size": size, "order": [{"_count": "desc"}, {"_key": "asc"}]}}}


def dot_from_score(score: float) -> float:
    """ES reports dot_product similarity as (1 + dot) / 2; Hit.score is the raw dot product."""
    return 2.0 * score - 1.0


# --- facets, trends and newest-first over a match set (issue 17) ------------------------------------
# Aggregations and sorting run on the kNN hits: with a top-level `knn` section Elasticsearch
# aggregates over its k nearest documents, and the top-level `min_score` (on `_score` =
# (1 + dot) / 2) drops hits and their counts alike, after int8 rescoring.
DATE_FORMATS = {"day": "yyyy-MM-dd", "month": "yyyy-MM", "year": "yyyy"}
TERM_FIELDS = {"city": "city", "hashtags": "hashtags", "source": "source"}
# Sources are stored as ingested; their buckets are folded to `facet_key` after the search, as the
# source filter ignores the case of ASCII letters (an index written before holds no folded copy to
# aggregate, and the local node runs no scripts). A match set holds at most `depth` posts, so
# `depth` buckets bring every spelling in it and the folded counts are exact.
FOLDED_FIELDS = frozenset({"source"})
NEWEST_SORT: list[dict[str, Any]] = [{"created_at": {"order": "desc", "missing": "_last"}}, {"id": "asc"}]


def score_from_dot(dot: float) -> float:
    """The `_score` Elasticsearch gives a dot product (the inverse of dot_from_score)."""
    return (1.0 + dot) / 2.0


def match_request(
    vector: np.ndarray,
    depth: int,
    num_candidates: int,
    filters: Filters | None,
    min_score: float | None,
    rescore_oversample: float = 0.0,
) -> dict[str, Any]:
    """The search body (without size, aggs, sort) that selects a match set: the `depth` nearest
    posts passing the filters, those with similarity ≥ min_score when set."""
    body: dict[str, Any] = {
        "knn": knn_clause(vector, depth, num_candidates, filters, rescore_oversample),
        "track_total_hits": True,
    }
    if min_score is not None:
        body["min_score"] = score_from_dot(min_score)
    return body


def terms_aggregation(field: str, size: int, depth: int) -> dict[str, Any]:
    """Most frequent values first, ties by value. shard_size ≥ depth makes the counts exact on
    any number of shards: no shard holds more than `depth` of the match set."""
    return {
        "terms": {
            "field": TERM_FIELDS[field],
            "size": max(size, depth) if field in FOLDED_FIELDS else size,
            "shard_size": max(size, depth),
            "order": [{"_count": "desc"}, {"_key": "asc"}],
        }
    }


def folded_counts(field: str, buckets: list[dict[str, Any]], size: int) -> list[tuple[str, int]]:
    """A terms aggregation's buckets as (facet_key, posts), spellings of one key summed, most first
    (ties by key, as the aggregation orders them), at most `size`."""
    counts: dict[str, int] = {}
    for bucket in buckets:
        key = facet_key(field, str(bucket["key"]))
        counts[key] = counts.get(key, 0) + int(bucket["doc_count"])
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]


def folded_periods(field: str, aggregation: dict[str, Any]) -> dict[str, dict[str, int]]:
    """facet_key → period → posts, from a trend aggregation (terms buckets, or the keyed `filters`
    buckets of the folded fields' totals)."""
    buckets = aggregation["buckets"]
    named = buckets.items() if isinstance(buckets, dict) else ((b["key"], b) for b in buckets)
    found: dict[str, dict[str, int]] = {}
    for value, bucket in named:
        periods = found.setdefault(facet_key(field, str(value)), {})
        for period in bucket["periods"]["buckets"]:
            periods[period["key_as_string"]] = periods.get(period["key_as_string"], 0) + int(period["doc_count"])
    return found


def period_aggregation(interval: str) -> dict[str, Any]:
    """Posts per UTC calendar period, in time order, empty periods left out."""
    return {
        "date_histogram": {
            "field": "created_at",
            "calendar_interval": interval,
            "format": DATE_FORMATS[interval],
            "min_doc_count": 1,
        }
    }


def facet_aggregations(fields: list[str], size: int, depth: int) -> dict[str, Any]:
    return {
        name: period_aggregation("month") if name == "month" else terms_aggregation(name, size, depth)
        for name in fields
    }


def trend_aggregations(
    by: str, interval: str, size: int, depth: int, include: list[str] | None = None
) -> dict[str, Any]:
    """Values of `by` (the `size` most frequent, or exactly `include`), each split by period. A
    folded field's `include` (keys) is one filter a key, matching its every spelling."""
    if include and by in FOLDED_FIELDS:
        keyed = {key: source_clause((key,)) for key in include}
        return {"values": {"filters": {"filters": keyed}, "aggs": {"periods": period_aggregation(interval)}}}
    values = terms_aggregation(by, len(include) if include else size, depth)
    if include:
        values["terms"]["include"] = include
    return {"values": {**values, "aggs": {"periods": period_aggregation(interval)}}}


def keyword_match_query(text: str, filters: Filters | None, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """The keyword query without the posts that hold an excluded word: as a token of the caption's
    standard analysis (whole words, lower-cased, not stemmed) or as a hashtag."""
    query = keyword_query(text, filters)
    if exclude:
        words = sorted({w.lower() for w in exclude})
        query["bool"]["must_not"] = [{"terms": {"caption.std": words}}, {"terms": {"hashtags": words}}]
    return query


def values_query(filters: Filters | None, by: str, values: list[str]) -> dict[str, Any]:
    """The filtered posts that hold one of `values` in the field `by` (a source in any case)."""
    held = source_clause(tuple(values)) if by in FOLDED_FIELDS else {"terms": {TERM_FIELDS[by]: values}}
    return {"bool": {"filter": [*filter_clauses(filters), held]}}
