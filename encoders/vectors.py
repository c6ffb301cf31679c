"""Vector helpers every encoder shares: unit rows, the rows nearest a vector, and words embedded
once per process. One copy each, so the text encoders rank and cache words the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, Sequence

import numpy as np


def unit_rows(x: np.ndarray) -> np.ndarray:
    """float32 rows scaled to length 1 (a zero row stays zero)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def nearest_rows(
    matrix: np.ndarray, vector: np.ndarray, k: int, allowed: np.ndarray | None = None
) -> list[tuple[int, float]]:
    """The k rows of `matrix` (unit rows) most similar to `vector` (any length), best first, as
    (row, cosine). `allowed` (booleans, one per row) leaves rows out by scoring them -inf."""
    sims = matrix @ unit_rows(np.asarray(vector).reshape(-1))
    if allowed is not None:
        sims = np.where(allowed, sims, -np.inf)
    k = min(k, len(sims))
    if k <= 0:
        return []
    top = np.argpartition(-sims, k - 1)[:k]
    top = top[np.argsort(-sims[top])]
    return [(int(i), float(sims[i])) for i in top]


def embed_words_cached(
    words: Sequence[str],
    cache: MutableMapping[str, np.ndarray],
    encode: Callable[[list[str]], np.ndarray],
    dim: int,
    known: Callable[[list[str]], Mapping[str, np.ndarray]] | None = None,
) -> np.ndarray:
    """Rows for `words` (stripped, lower-cased), each embedded once per process: from `cache`, else
    from `known` (given the words not cached, it returns rows already computed for some of them,
    e.g. the nearest-word vocabulary's), else one `encode` call for all the rest. Raises KeyError
    for an empty word."""
    keys = [w.strip().lower() for w in words]
    for w, key in zip(words, keys, strict=True):
        if not key:
            raise KeyError(w)
    missing = [k for k in dict.fromkeys(keys) if k not in cache]
    if missing and known is not None:
        cache.update(known(missing))
        missing = [k for k in missing if k not in cache]
    if missing:
        for k, row in zip(missing, encode(missing), strict=True):
            cache[k] = row
    if not keys:
        return np.zeros((0, dim), np.float32)
    return np.stack([cache[k] for k in keys])
