"""How a score cut-off trades hits for precision, measured on leave-one-source-out galleries.

For each held-out source, a model's image vectors (trained without that source) are searched with
three kinds of one-word query: label words of ≥ 5 pictures, of 1–4 pictures, and *absent* words
(label words of the other sources that label nothing here: a good cut-off returns little for them).
Each query's first page (`PAGE` hits) is cut by: nothing; one fixed threshold for every query; and
`min_score=auto` (`query.cutoff.auto_min_score` on the query's top `AUTO_POOL` scores). Per source:
the precision of the hits kept (relevant kept / kept, over all its queries), the share of the
relevant first-page hits that the cut-off lost, and the hits kept per absent query. Sources weigh the
same in the means. The fixed threshold and `z` are each the best of a grid by the F-score of
(precision kept, relevant kept), chosen on the same galleries: the comparison flatters neither.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from jointspace.encoders.evaluation.core import query_matrix
from jointspace.encoders.evaluation.queries import Query, parse_query, relevant_mask
from jointspace.query.cutoff import AUTO_POOL, auto_min_score

from jointspace.protocols import TextEncoder

PAGE = 20
FIXED_GRID = tuple(round(0.01 * i, 2) for i in range(0, 80))
Z_GRID = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0)
POOL_GRID = (100, AUTO_POOL)  # a shallow pool and the default one
ABSENT_PER_SOURCE = 200


@dataclass
class CutoffGallery:
    """One held-out source: its vectors and, per query, the first page's scores and relevance."""

    source: str
    page_scores: np.ndarray  # (Q, PAGE) descending
    page_relevant: np.ndarray  # (Q, PAGE) bool
    absent: np.ndarray  # (Q,) bool: the word labels nothing in this source
    sorted_scores: np.ndarray  # (Q, ≤ 500) the top scores, descending: `auto` reads the top `pool`


def absent_words(own: set[str], others: Sequence[set[str]], n: int = ABSENT_PER_SOURCE) -> list[str]:
    """Up to `n` label words of other sources that label nothing here, a fixed pseudo-random choice."""
    pool = sorted({w for lab in others for w in lab} - own)
    pool.sort(key=lambda w: hashlib.sha1(w.encode()).hexdigest())
    return sorted(pool[:n])


def build_gallery(
    source: str,
    vectors: np.ndarray,
    labels: Sequence[frozenset[str]],
    queries: Sequence[Query],
    absent: Sequence[str],
    text: TextEncoder,
) -> CutoffGallery:
    all_queries = [*queries, *(parse_query(w, "absent") for w in absent)]
    qvecs, ok = query_matrix(text, all_queries)
    qvecs, all_queries = qvecs[ok], [q for q, good in zip(all_queries, ok, strict=True) if good]
    scores = qvecs @ vectors.T
    order = np.argsort(-scores, axis=1, kind="stable")
    sorted_scores = np.take_along_axis(scores, order, axis=1)
    relevant = np.array([relevant_mask(q, labels) for q in all_queries], bool).reshape(scores.shape)
    page = min(PAGE, scores.shape[1])
    return CutoffGallery(
        source,
        sorted_scores[:, :page],
        np.take_along_axis(relevant, order[:, :page], axis=1),
        np.array([q.kind == "absent" for q in all_queries]),
        sorted_scores[:, : max(POOL_GRID)].astype(np.float32),
    )


def measure(g: CutoffGallery, thresholds: np.ndarray) -> dict[str, float]:
    """Precision kept, share of relevant lost and hits kept per absent query, for per-query thresholds."""
    keep = g.page_scores >= thresholds[:, None]
    kept = int(keep.sum())
    rel_kept = int((keep & g.page_relevant).sum())
    rel_all = int(g.page_relevant.sum())
    return {
        "precision": rel_kept / kept if kept else 0.0,
        "lost": 1 - rel_kept / rel_all if rel_all else 0.0,
        "kept_per_query": float(keep.sum(axis=1).mean()) if len(keep) else 0.0,
        "absent_kept": float(keep[g.absent].sum(axis=1).mean()) if g.absent.any() else 0.0,
    }


def mean_over(galleries: Sequence[CutoffGallery], rule: Callable[[CutoffGallery], np.ndarray]) -> dict[str, Any]:
    per = {g.source: measure(g, rule(g)) for g in galleries}
    out: dict[str, Any] = {k: float(np.mean([p[k] for p in per.values()])) for k in next(iter(per.values()))}
    p, r = out["precision"], 1 - out["lost"]
    out["f1"] = 2 * p * r / (p + r) if p + r else 0.0
    out["per_source"] = per
    return out


def _fixed(g: CutoffGallery, threshold: float) -> np.ndarray:
    return np.full(len(g.page_scores), threshold)


def _auto(g: CutoffGallery, pool: int, z: float) -> np.ndarray:
    return np.array([auto_min_score(s[:pool], z) for s in g.sorted_scores])


def analyse(galleries: Sequence[CutoffGallery]) -> dict[str, Any]:
    """No cut-off, the best fixed threshold and the best `z` for `auto` (each by F-score), plus every z."""
    none = mean_over(galleries, partial(_fixed, threshold=-np.inf))
    fixed = {t: mean_over(galleries, partial(_fixed, threshold=t)) for t in FIXED_GRID}
    best_t = max(fixed, key=lambda t: fixed[t]["f1"])
    auto = {(pool, z): mean_over(galleries, partial(_auto, pool=pool, z=z)) for pool in POOL_GRID for z in Z_GRID}
    best = max(auto, key=lambda pz: auto[pz]["f1"])
    return {
        "page": PAGE,
        "none": none,
        "fixed": {"threshold": best_t, **fixed[best_t]},
        "auto": {"pool": best[0], "z": best[1], **auto[best]},
        "auto_grid": {f"pool {p}, z {z:g}": auto[(p, z)] for p, z in auto},
        "queries": {g.source: {"present": int((~g.absent).sum()), "absent": int(g.absent.sum())} for g in galleries},
    }


def markdown(result: dict[str, Any], model: str) -> list[str]:
    lines = [
        "",
        f"## Score cut-off: `min_score=auto` on the held-out galleries ({model})",
        "",
        f"First page of {result['page']} hits per one-word query (label words of the held-out source, and "
        "*absent* words: label words of the other sources that label nothing there). Precision of the hits "
        "kept, share of the relevant first-page hits lost, hits kept per query and per absent query; means "
        "over sources. The fixed threshold and auto's z are each the best of a grid by the F-score of "
        "(precision, 1 − lost) on these same galleries.",
        "",
        "| cut-off | precision kept | relevant lost | hits kept / query | hits kept / absent query | F |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = [
        ("none", result["none"]),
        (f"fixed {result['fixed']['threshold']:.2f}", result["fixed"]),
        *(
            (
                f"auto, {name}"
                + (" (chosen)" if name == f"pool {result['auto']['pool']}, z {result['auto']['z']:g}" else ""),
                r,
            )
            for name, r in result["auto_grid"].items()
        ),
    ]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['precision']:.3f} | {r['lost']:.3f} | {r['kept_per_query']:.1f} | "
            f"{r['absent_kept']:.1f} | {r['f1']:.3f} |"
        )
    return lines
