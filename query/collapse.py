"""Near-duplicate collapsing: keep the best-ranked of each group of almost identical images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from jointspace.records import Hit


@dataclass(frozen=True, slots=True)
class Collapsed:
    id: str
    duplicate_of: str
    similarity: float


def collapse(hits: Sequence[Hit], threshold: float | None) -> tuple[list[Hit], list[Collapsed]]:
    """Greedy in rank order: a hit whose vector has dot product ≥ `threshold` with a hit already
    kept is dropped. Greedy keeps the result of a shorter list a prefix of a longer one's, so
    pages stay consistent. `threshold` None switches collapsing off; hits without a vector stay.
    """
    if threshold is None or not hits:
        return list(hits), []
    kept: list[Hit] = []
    dropped: list[Collapsed] = []
    dims = {np.asarray(h.vector).size for h in hits if h.vector is not None}
    # One preallocated matrix of the kept vectors: each hit costs one matrix-vector product.
    matrix = np.empty((len(hits), max(dims, default=0)), dtype=np.float32)
    owners: list[str] = []
    for hit in hits:
        if hit.vector is None:
            kept.append(hit)
            continue
        vector = np.asarray(hit.vector, dtype=np.float32).reshape(-1)
        if owners:
            sims = matrix[: len(owners)] @ vector
            best = int(np.argmax(sims))
            if sims[best] >= threshold:
                dropped.append(Collapsed(hit.id, owners[best], float(sims[best])))
                continue
        matrix[len(owners)] = vector
        owners.append(hit.id)
        kept.append(hit)
    return kept, dropped
