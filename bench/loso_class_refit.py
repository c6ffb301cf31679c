"""Class texts refitted to the training pictures' words, judged by leave-one-source-out (issue 13).

    JOINTSPACE_HOME=... nice -n 10 python bench/loso_class_refit.py --max-per-source 500 --out report.json

The zero-training vector of a picture is the probability-weighted mean of its top ImageNet classes'
text vectors (the WordNet prior: each class read by the sentence model). The classifier errs the same
way on every kind of drawing (an emoji face is a "ping-pong ball", a line icon a "safety pin"), and the
prior cannot know it. Here each fold refits the 1,000 class vectors C to its training pictures, shrunk
towards the prior C₀:

    C = argmin ‖P·C − Y‖² + λ‖C − C₀‖²  =  (PᵀP + λI)⁻¹ (PᵀY + λC₀)

with P the pictures' top-k class weights (as the zero-training vector takes them, renormalised to sum
to 1) and Y their word targets. A class no training picture falls in keeps its prior; λ says how many
pictures' worth of evidence the prior is worth. Nothing changes at search time: the bundle already
ships its class matrix, so a refitted one is a drop-in.

Rows, each fold trained as the product trains (`train_one` on every picture of the other sources):
the zero-training baseline; the default; the refitted zero-training vector alone per λ; the default
with the refitted vector in place of the prior's, at the default weights and at other weightings.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jointspace.encoders.image_encoders import top_classes, zeroshot_vectors
from jointspace.encoders.vectors import unit_rows
from loso_folds import HW, NW, ZW, finish, folds, parser, workspace


def class_weights(logits: np.ndarray, top_k: int) -> np.ndarray:
    """(N, classes) top-k softmax weights renormalised to sum to 1 (the zero-training vector's mix)."""
    top, w = top_classes(logits, top_k)
    out = np.zeros(np.shape(logits), np.float64)
    np.put_along_axis(out, top, w / w.sum(axis=1, keepdims=True), axis=1)
    return out


def refit_classes(
    p: np.ndarray, y: np.ndarray, prior: np.ndarray, lam: float, weight: np.ndarray | None = None
) -> np.ndarray:
    """Weighted ridge towards the prior; `weight` per picture (mean 1), None: every picture the same."""
    pw = p if weight is None else p * weight[:, None]
    gram = pw.T @ p
    gram[np.diag_indices_from(gram)] += lam
    return np.linalg.solve(gram, pw.T @ y + lam * prior).astype(np.float32)


def source_balance(sources: list[str], gamma: float) -> np.ndarray:
    """Per-picture weights ∝ 1 / (its source's picture count)^γ, mean 1."""
    names, counts = np.unique(sources, return_counts=True)
    size = dict(zip(names, counts, strict=True))
    w = np.array([size[s] ** -gamma for s in sources], np.float64)
    return w / w.mean()


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--lambdas", type=float, nargs="+", default=[0.3, 1.0, 3.0, 10.0, 30.0])
    ap.add_argument("--balance", type=float, nargs="*", default=[0.5], help="also source-balanced fits at these γ")
    args = ap.parse_args()
    settings, ws, names = workspace(args)
    top_k = settings.zeroshot_top_k
    weightings = [(HW, NW, ZW), (0.15, 0.25, 0.6), (0.1, 0.2, 0.7), (0.25, 0.35, 0.4), (0.0, 0.3, 0.7)]
    rows: dict = {}
    for fold in folds(ws, names, settings, rows):
        targets, usable = ws.targets(fold.trained.text, fold.items, fold.options.targets)
        c0 = fold.trained.class_matrix.astype(np.float64)
        p_train = class_weights(ws.outputs(fold.items).logits, top_k)[usable]
        y = targets[usable].astype(np.float64)
        item_sources = [it.post.source or "?" for it, ok in zip(fold.items, usable, strict=True) if ok]
        logits = fold.gallery.outputs.logits
        fits: list[tuple[str, float, np.ndarray | None]] = [(f"λ{lam:g}", lam, None) for lam in args.lambdas]
        for gamma in args.balance:
            balance = source_balance(item_sources, gamma)
            fits += [(f"λ{lam:g} balanced γ{gamma:g}", lam, balance) for lam in args.lambdas]
        for label, lam, weight in fits:
            c = refit_classes(p_train, y, c0, lam, weight)
            fold.add(f"refit {label} alone, raw rows", zeroshot_vectors(logits, c, top_k))
            # The bundle's zero-training encoder reads its class matrix as unit rows.
            z = zeroshot_vectors(logits, unit_rows(c), top_k)
            fold.add(f"refit {label} alone", z)
            for h, n, w in weightings:
                fold.add(
                    f"refit {label}, head {h:.2f} knn {n:.2f} zs {w:.2f}",
                    unit_rows(h * fold.head + n * fold.near + w * z),
                )
    finish(rows, names, args.out)


if __name__ == "__main__":
    main()
