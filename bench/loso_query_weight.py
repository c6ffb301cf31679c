"""How much a query-dependent blend would gain, judged by leave-one-source-out (issue 13).

    JOINTSPACE_HOME=... nice -n 5 python bench/loso_query_weight.py --max-per-source 500 --out report.json

The default stores one vector per picture: the zero-training vector and the trained parts (ridge
head, nearest training pictures) blended at fixed weights. Its failures are words no training
source uses (stellarium's *constellation*: 0.7 with zero-training, 0.0 with the default): the
trained parts pull such pictures towards what other sources call them. A query could say how much
to trust each part if a picture kept the two as separate halves of its vector ([zero-training,
trained], twice the dimensions) and the query weighed them: score = w(q)·q·z + (1 − w(q))·q·t, with
w(q) high for a word far from every training label word (its novelty: 1 − the largest cosine to the
fold's training label words) and low for a familiar one. Measured here before any change to the
index: fixed w in the same two-part form (the reference), and w(q) = lo + (hi − lo)·ramp(novelty).
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jointspace.encoders.evaluation.loso import QuerySet, ranks_of_relevant
from jointspace.encoders.targets import label_words
from jointspace.encoders.vectors import unit_rows
from jointspace.encoders.words import STOP_WORDS
from loso_folds import HW, NW, finish, folds, log, parser, workspace


def figures(scores_kw: np.ndarray, kw: QuerySet, scores_rare: np.ndarray, rare: QuerySet) -> dict[str, Any]:
    """What `HeldOut.score` reports, from (Q, N) score matrices instead of picture vectors."""
    out: dict[str, Any] = {}
    if kw.queries:
        p10 = np.array([(r <= 10).sum() / 10 for r in ranks_of_relevant(scores_kw, kw.relevant)])
        p10 = np.where(kw.embeddable, p10, 0.0)
    else:
        p10 = np.zeros(0)
    if rare.queries:
        ranks = ranks_of_relevant(scores_rare, rare.relevant)
        r10 = np.where(rare.embeddable, [(r <= 10).mean() if len(r) else 0.0 for r in ranks], 0.0)
    else:
        r10 = np.zeros(0)
    out["p10"] = float(p10.mean()) if p10.size else None
    out["r10"] = float(r10.mean()) if r10.size else None
    out["mrr"] = None
    out["p10_per_query"], out["r10_per_query"], out["rr_per_query"] = p10.tolist(), r10.tolist(), []
    return out


def two_halves(
    rows: dict[str, dict[str, Any]],
    source: str,
    keyword: tuple[np.ndarray, np.ndarray, QuerySet],
    rare: tuple[np.ndarray, np.ndarray, QuerySet],
    row: str,
    w_kw: np.ndarray | float,
    w_rare: np.ndarray | float,
) -> None:
    """Scores w·(q·z) + (1 − w)·(q·t) per query (w a number or one per query) into `rows`."""

    def column(w: np.ndarray | float) -> np.ndarray | float:
        return np.asarray(w, np.float64).reshape(-1, 1) if np.ndim(w) else w

    (z_kw, t_kw, kw), (z_rare, t_rare, rq) = keyword, rare
    wk, wr = column(w_kw), column(w_rare)
    rows.setdefault(row, {})[source] = figures(wk * z_kw + (1 - wk) * t_kw, kw, wr * z_rare + (1 - wr) * t_rare, rq)


def ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


def main() -> None:
    args = parser(__doc__).parse_args()
    settings, ws, names = workspace(args)
    rows: dict[str, dict[str, Any]] = {}
    for fold in folds(ws, names, settings, rows):
        text = fold.trained.text
        vocab = sorted({w for it in fold.items for w in label_words(it) if w not in STOP_WORDS})
        vocab_m = unit_rows(np.asarray(text.embed_words(vocab), np.float32))
        kw, rare = fold.gallery.query_sets(text)
        tr = unit_rows(HW * fold.head + NW * fold.near)  # the trained half of a two-part vector

        def novelty(qs: QuerySet, vocab_m: np.ndarray = vocab_m) -> np.ndarray:
            return 1.0 - (qs.vectors @ vocab_m.T).max(axis=1) if qs.queries else np.zeros(0)

        n_kw, n_rare = novelty(kw), novelty(rare)
        keyword = (kw.vectors @ fold.zs.T, kw.vectors @ tr.T, kw)
        add = partial(two_halves, rows, fold.source, keyword, (rare.vectors @ fold.zs.T, rare.vectors @ tr.T, rare))
        for w in (0.4, 0.5, 0.6):
            add(f"two halves, fixed w {w}", w, w)
        for lo, hi in ((0.4, 0.8), (0.4, 0.9), (0.5, 0.9), (0.3, 0.8), (0.5, 1.0)):
            for a, b in ((0.0, 0.15), (0.05, 0.2), (0.1, 0.3)):
                add(
                    f"two halves, w {lo}→{hi} over novelty {a}-{b}",
                    lo + (hi - lo) * ramp(n_kw, a, b),
                    lo + (hi - lo) * ramp(n_rare, a, b),
                )
        known = float(np.mean(n_kw < 1e-4)) if n_kw.size else float("nan")
        log(f"{fold.source}: share of keyword queries that are training label words: {known:.2f}")
    finish(rows, names, args.out)


if __name__ == "__main__":
    main()
