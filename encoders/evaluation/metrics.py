"""Ranking metrics over a gallery of unit image vectors. Plain numpy: a few thousand images."""

from __future__ import annotations

import numpy as np


def image_to_image_p10(vectors: np.ndarray, categories: list[str]) -> tuple[float, float, int]:
    """Mean P@10 of every image (whose category has another member) as a query against the others,
    relevant = same category; plus the random base rate and the number of queries."""
    cats = np.array(categories)
    _, inverse, counts = np.unique(cats, return_inverse=True, return_counts=True)
    usable = np.flatnonzero(counts[inverse] > 1)
    if len(usable) == 0 or len(cats) < 2:
        return 0.0, 0.0, 0
    sims = vectors[usable] @ vectors.T
    sims[np.arange(len(usable)), usable] = -np.inf  # an image does not retrieve itself
    k = min(10, len(cats) - 1)
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    p10 = float((inverse[top] == inverse[usable][:, None]).mean())
    base = float(((counts[inverse[usable]] - 1) / (len(cats) - 1)).mean())
    return p10, base, len(usable)


def category_base_rate(categories: list[str]) -> tuple[float, int]:
    """Random ranking's image → image P@10: the chance another image shares the query's category."""
    cats = np.array(categories)
    if len(cats) < 2:
        return 0.0, 0
    _, inverse, counts = np.unique(cats, return_inverse=True, return_counts=True)
    usable = counts[inverse] > 1
    return float(((counts[inverse[usable]] - 1) / (len(cats) - 1)).mean()) if usable.any() else 0.0, int(usable.sum())
