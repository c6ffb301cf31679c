"""Reciprocal rank fusion, computed here so every backend (the local node has no x-pack RRF
retriever, the embedded one has none at all) fuses the same way."""
from __future__ import annotations

from collections.abc import Sequence


def reciprocal_rank_fusion(rankings: Sequence[tuple[float, Sequence[str]]], rrf_k: int = 60
                           ) -> list[tuple[str, float]]:
    """Ids by fused score Σ weight / (rrf_k + rank), rank 1-based in each (weight, ids) list.

    Ties go to the id with the better best rank, then to the id itself, so the order is stable.
    """
    scores: dict[str, float] = {}
    best: dict[str, int] = {}
    for weight, ids in rankings:
        for rank, post_id in enumerate(ids, start=1):
            scores[post_id] = scores.get(post_id, 0.0) + weight / (rrf_k + rank)
            best[post_id] = min(best.get(post_id, rank), rank)
    return sorted(scores.items(), key=lambda item: (-item[1], best[item[0]], item[0]))
