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

import argparse
import json
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from jointspace.encoders.evaluation.core import paired_by_source
from jointspace.encoders.evaluation.loso import HeldOut, fold_options, source_mean
from jointspace.encoders.image_encoders import run_head, zeroshot_vectors
from jointspace.encoders.knn import blend
from jointspace.encoders.training_runs import DEFAULT_RUN, Workspace, train_one, training_items
from jointspace.encoders.vectors import unit_rows

from jointspace.settings import get_settings

BASELINE = "zero-training (wordnet prior)"
DEFAULT = "default"


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def class_weights(logits: np.ndarray, n_classes: int, top_k: int) -> np.ndarray:
    """(N, classes) top-k softmax weights renormalised to sum to 1 (the zero-training vector's mix)."""
    lg = np.asarray(logits, np.float64)
    p = np.exp(lg - lg.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    k = min(top_k, n_classes)
    top = np.argpartition(-p, k - 1, axis=1)[:, :k]
    out = np.zeros_like(p)
    w = np.take_along_axis(p, top, axis=1)
    np.put_along_axis(out, top, w / w.sum(1, keepdims=True), axis=1)
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


def record(
    rows: dict[str, dict[str, Any]], source: str, gallery: HeldOut, text: Any, row: str, vectors: np.ndarray
) -> None:
    """Scores one row's vectors on one held-out gallery (bind the fold's values with functools.partial)."""
    rows.setdefault(row, {})[source] = gallery.score(vectors, text)


def print_table(rows: dict[str, dict[str, Any]], names: list[str]) -> None:
    """A markdown table: per source P@10, the mean, its ratio to zero-training, sources above it,
    the paired difference against the default, rare-word R@10 and its difference against zero-training."""
    base = rows[BASELINE]
    default = rows[DEFAULT]
    table = []
    for name, res in rows.items():
        mean = source_mean(res, "p10")
        vz = paired_by_source(res, base, "p10")
        vd = paired_by_source(res, default, "p10")
        rz = paired_by_source(res, base, "r10")
        table.append((name, res, mean, vz, vd, rz))
    bmean = source_mean(base, "p10") or float("nan")
    print("| row | " + " | ".join(names) + " | mean | × zero | > 0 | vs default | R@10 | R@10 vs zero |")
    print("| --- |" + " ---: |" * (len(names) + 6))
    for name, res, mean, vz, vd, rz in table:
        mean = float("nan") if mean is None else mean
        cells = " | ".join(f"{res[s]['p10']:.3f}" if res[s]["p10"] is not None else "–" for s in names)
        print(
            f"| {name} | {cells} | {mean:.3f} | {mean / bmean:.2f} | {vz['above']} |"
            f" {vd['diff']:+.3f} [{vd['low']:+.3f}, {vd['high']:+.3f}] | {source_mean(res, 'r10'):.3f} |"
            f" {rz['diff']:+.3f} [{rz['low']:+.3f}, {rz['high']:+.3f}] |"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-per-source", type=int, default=500, help="the held-out galleries' cap")
    ap.add_argument("--train-max-per-source", type=int, default=0, help="training cap per source (0: all)")
    ap.add_argument("--lambdas", type=float, nargs="+", default=[0.3, 1.0, 3.0, 10.0, 30.0])
    ap.add_argument("--balance", type=float, nargs="*", default=[0.5], help="also source-balanced fits at these γ")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    settings = get_settings()
    ws = Workspace(settings, max_per_source=args.max_per_source, train_max_per_source=args.train_max_per_source)
    names = ws.prepared_sources()
    top_k = settings.zeroshot_top_k
    nw, zw = DEFAULT_RUN.neighbour_weight, DEFAULT_RUN.zeroshot_weight
    hw = 1 - nw - zw
    weightings = [(hw, nw, zw), (0.15, 0.25, 0.6), (0.1, 0.2, 0.7), (0.25, 0.35, 0.4), (0.0, 0.3, 0.7)]
    rows: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    for s in names:
        others = [o for o in names if o != s]
        opts = fold_options(DEFAULT_RUN, others)
        trained = train_one(ws, opts, progress=False)
        items = training_items(ws, opts)
        targets, usable = ws.targets(trained.text, items, opts.targets)
        c0 = trained.class_matrix.astype(np.float64)
        p_train = class_weights(ws.outputs(items).logits, len(c0), top_k)[usable]
        y = targets[usable].astype(np.float64)
        item_sources = [it.post.source or "?" for it, ok in zip(items, usable, strict=True) if ok]
        g = HeldOut(ws, s)
        feats, logits = g.outputs.features, g.outputs.logits
        head = run_head(trained.result.head, feats)
        assert trained.neighbours is not None, "the default carries a neighbour bank"
        near = trained.neighbours.vectors(feats)
        zs = zeroshot_vectors(logits, trained.class_matrix, top_k)
        add = partial(record, rows, s, g, trained.text)

        add(BASELINE, zs)
        add(DEFAULT, blend(head, zs, zw, near, nw))
        fits: list[tuple[str, float, np.ndarray | None]] = [(f"λ{lam:g}", lam, None) for lam in args.lambdas]
        for gamma in args.balance:
            balance = source_balance(item_sources, gamma)
            fits += [(f"λ{lam:g} balanced γ{gamma:g}", lam, balance) for lam in args.lambdas]
        for label, lam, weight in fits:
            c = refit_classes(p_train, y, c0, lam, weight)
            add(f"refit {label} alone, raw rows", zeroshot_vectors(logits, c, top_k))
            # The bundle's zero-training encoder reads its class matrix as unit rows.
            z = zeroshot_vectors(logits, unit_rows(c), top_k)
            add(f"refit {label} alone", z)
            for h, n, w in weightings:
                add(f"refit {label}, head {h:.2f} knn {n:.2f} zs {w:.2f}", unit_rows(h * head + n * near + w * z))
        log(f"{s}: fold done ({time.perf_counter() - started:.0f} s), {len(p_train)} training pictures")
    print_table(rows, names)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=None), encoding="utf-8")
        log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
