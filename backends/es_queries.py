"""Pure builders of Elasticsearch request bodies (plain dicts, no client), so tests can assert them exactly."""
from __future__ import annotations

from typing import Any

import numpy as np

from jointspace.es_mappings.template import VECTOR_FIELD
from jointspace.records import Filters

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
        clauses.append({"terms": {"source": list(filters.sources)}})
    if filters.after or filters.before:
        bounds: dict[str, str] = {}
        if filters.after:
            bounds["gte"] = filters.after.isoformat()
        if filters.before:
            bounds["lt"] = filters.before.isoformat()
        clauses.append({"range": {"created_at": bounds}})
    return clauses


def num_candidates_for(k: int, requested: int | None, factor: int, minimum: int, maximum: int) -> int:
    """Candidates per shard: the request's, else max(k × factor, minimum); never below k nor above maximum."""
    wanted = requested if requested is not None else max(k * factor, minimum)
    return max(k, min(wanted, maximum))


def knn_clause(vector: np.ndarray, k: int, num_candidates: int, filters: Filters | None = None,
               rescore_oversample: float = 0.0) -> dict[str, Any]:
    """The top-level `knn` section, with the filters inside it (pre-filtering: k hits whenever k match).

    `rescore_vector` re-ranks oversample × k quantised candidates by the float vectors (int8_hnsw).
    """
    clause: dict[str, Any] = {"field": VECTOR_FIELD, "query_vector": [float(x) for x in vector], "k": k,
                              "num_candidates": num_candidates}
    if clauses := filter_clauses(filters):
        clause["filter"] = clauses
    if rescore_oversample > 0:
        clause["rescore_vector"] = {"oversample": rescore_oversample}
    return clause


def keyword_query(text: str, filters: Filters | None = None) -> dict[str, Any]:
    """BM25 over the caption (english and standard analyzers) and the hashtags, filters in `bool.filter`."""
    query: dict[str, Any] = {"bool": {"must": [{"multi_match": {"query": text, "fields": list(KEYWORD_FIELDS)}}]}}
    if clauses := filter_clauses(filters):
        query["bool"]["filter"] = clauses
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
