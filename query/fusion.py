"""Reciprocal rank fusion, computed here so every backend (the local node has no x-pack RRF
retriever, the embedded one has none at all) fuses the same way."""

from __future__ import annotations

from collections.abc import Sequence


def reciprocal_rank_fusion(rankings: Sequence[tuple[float, Sequence[str]]], rrf_k: int = 60) -> list[tuple[str, float]]:
    """Ids by fused score Σ weight / (rrf_k + rank), rank 1-based in each (weight, ids) list.

    Ties go to the id with the better best rank, then to the id itself, so the order is stable.
    """
    scores: dict[str, float] = {}
    best: dict[str, int] = {}
    for weight, ids in rankings:
        for rank, post_id in enumerate(ids, start=1):
            score = scores.get(post_id)
            if score is None:
                scores[post_id], best[post_id] = weight / (rrf_k + rank), rank
            else:
                scores[post_id] = score + weight / (rrf_k + rank)
                if rank < best[post_id]:
                    best[post_id] = rank
    # Plain tuples sort natively: a third faster than a key function over hundreds of ids a query.
    order = sorted([(-score, best[post_id], post_id) for post_id, score in scores.items()])
    return [(post_id, -negated) for negated, _, post_id in order]
