"""Query expansion by pseudo-relevance feedback (average / alpha query expansion), for evaluation.

A semantic query is a text vector q. The gallery is scored with q, the top `top` hits (m) are
taken as if they were relevant, and the query is moved towards them:

    q' = normalise(q + weight · Σ wᵢ xᵢ / Σ wᵢ),   wᵢ = max(sᵢ, 0)^alpha

where xᵢ are the hits' (unit) picture vectors and sᵢ their scores against q: `alpha` 0 is the plain
average of the hits (Chum et al. 2007, "Total Recall"), `alpha` > 0 leans on the best-scored ones
(Radenović et al.'s alpha-QE). The gallery is scored again with q'. Pictures of one collection that
show the same thing look alike, so the hits' mean reaches pictures the text vector alone misses. It
reads only the gallery's vectors, never labels. `top` 0 is no expansion.

Measured by leave-one-source-out (`bench/loso_query_expansion.py`, docs/eval-report.md): no clear
gain on unseen sources, so searches do not expand (the product is unchanged); kept here so that the
measurement can be repeated (`HeldOut.score(..., expansion=...)`). Two relatives are measured beside
it: the feedback's picture-to-picture similarity read on the backbone's standardised features
instead of the joint space (`feedback_scores` with `among`), and database-side augmentation (each
gallery vector moved towards its nearest gallery pictures, `augment_gallery`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Expansion:
    """Settings of one expansion: `top` hits fed back (0: off), their weight against the query, alpha."""

    top: int = 0
    weight: float = 1.0
    alpha: float = 0.0

    @property
    def active(self) -> bool:
        return self.top > 0 and self.weight > 0

    def label(self) -> str:
        return f"QE m={self.top} β={self.weight:g} α={self.alpha:g}" if self.active else "no QE"


def expand(query: np.ndarray, hits: np.ndarray, scores: np.ndarray, weight: float, alpha: float = 0.0) -> np.ndarray:
    """The expanded query vector (unit length) from the query and its first-round hits.

    `query` (d,), `hits` (k, d) the hits' vectors (unit rows, best first), `scores` (k,) theirs
    against the query. No hits, or no positive weight: the query unchanged."""
    q = np.asarray(query, np.float32)
    x = np.asarray(hits, np.float32).reshape(-1, q.shape[0])
    if not len(x) or weight <= 0:
        return q
    w = np.maximum(np.asarray(scores, np.float32), 0.0) ** alpha if alpha else np.ones(len(x), np.float32)
    total = float(w.sum())
    if total <= 0:
        return q
    out = q + weight * (w @ x) / total
    norm = float(np.linalg.norm(out))
    return (out / norm).astype(np.float32) if norm > 0 else q


def expanded_scores(queries: np.ndarray, gallery: np.ndarray, expansion: Expansion) -> np.ndarray:
    """(Q, N) scores of a gallery (N, d unit rows) for Q query vectors, after expansion (batch form of
    `expand`, as the product computes it per query: the top hits by score, ties by gallery order)."""
    if not expansion.active or not len(gallery) or not len(queries):
        return queries @ gallery.T  # exactly the plain scores (same dtypes as without expansion)
    q = np.asarray(queries, np.float32)
    g = np.asarray(gallery, np.float32)
    scores = q @ g.T
    m = min(expansion.top, len(g))
    top = np.argsort(-scores, axis=1, kind="stable")[:, :m]
    s = np.take_along_axis(scores, top, axis=1)
    w = np.maximum(s, 0.0) ** expansion.alpha if expansion.alpha else np.ones_like(s)
    total = w.sum(axis=1, keepdims=True)
    feedback = np.einsum("qk,qkd->qd", w, g[top]) / np.where(total > 0, total, 1.0)
    moved = q + expansion.weight * np.where(total > 0, feedback, 0.0)
    norm = np.linalg.norm(moved, axis=1, keepdims=True)
    moved = np.where(norm > 0, moved / np.where(norm > 0, norm, 1.0), q)
    return moved @ g.T


def feedback_scores(queries: np.ndarray, gallery: np.ndarray, expansion: Expansion, among: np.ndarray) -> np.ndarray:
    """(Q, N) first-round scores plus β × the weighted mean similarity, read on `among` (N, f unit rows,
    e.g. the pictures' standardised backbone features), of each picture to the query's top m hits.
    With `among` = `gallery` it ranks as `expanded_scores` does (q'·x is (q·x + β·mean xᵢ·x) / |…|)."""
    q = np.asarray(queries, np.float32)
    g = np.asarray(gallery, np.float32)
    scores = q @ g.T
    if not expansion.active or not len(g) or not len(q):
        return scores
    f = np.asarray(among, np.float32)
    m = min(expansion.top, len(g))
    top = np.argsort(-scores, axis=1, kind="stable")[:, :m]
    s = np.take_along_axis(scores, top, axis=1)
    w = np.maximum(s, 0.0) ** expansion.alpha if expansion.alpha else np.ones_like(s)
    total = w.sum(axis=1, keepdims=True)
    w = w / np.where(total > 0, total, 1.0)
    feedback = np.einsum("qk,qkf->qf", w, f[top]) @ f.T
    return scores + expansion.weight * feedback


def augment_gallery(gallery: np.ndarray, among: np.ndarray, k: int, weight: float) -> np.ndarray:
    """Database-side augmentation: each gallery vector (unit rows) plus `weight` × the mean of its `k`
    nearest other gallery pictures' vectors (nearest by `among`, unit rows), normalised."""
    g = np.asarray(gallery, np.float32)
    if k <= 0 or weight <= 0 or len(g) < 2:
        return g
    f = np.asarray(among, np.float32)
    sim = f @ f.T
    np.fill_diagonal(sim, -np.inf)
    k = min(k, len(g) - 1)
    near = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    out = g + weight * g[near].mean(axis=1)
    return out / np.linalg.norm(out, axis=1, keepdims=True)
