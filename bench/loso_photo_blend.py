"""A blend that leans on the classifier for photos, judged by leave-one-source-out (issue 13).

    JOINTSPACE_HOME=... nice -n 5 python bench/loso_photo_blend.py --max-per-source 500 --out report.json

The default blends three unit vectors with fixed weights (ridge head 0.15, nearest training
pictures 0.35, zero-training 0.5). Per source the best weights differ: photos do best with more of the
ImageNet classifier (it was trained on photos), drawings and icons with more of what training
pictures were called. Here a linear probe on the backbone features, fitted in each fold to tell the
fold's photo sources from its drawings (`fit_ridge` on a 0/1 target, so no label of the held-out
source is read), gives each picture a photo score p ∈ [0, 1], and the weights move from the drawing
weighting to the photo weighting with p. Rows: fixed weightings; the probe's blend for pairs of them;
and, for reference, the same pairs with the true photo/drawing split of the held-out source
(an oracle, not a candidate).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jointspace.encoders.evaluation.loso import HeldOut, fold_options
from jointspace.encoders.image_encoders import run_head, zeroshot_vectors
from jointspace.encoders.ridge import fit_ridge
from jointspace.encoders.training_runs import DEFAULT_RUN, PHOTO_SOURCES, Workspace, train_one, training_items
from jointspace.encoders.vectors import unit_rows
from loso_class_refit import BASELINE, DEFAULT, log, print_table, record

from jointspace.settings import get_settings

# (head, neighbours, zero-training)
WEIGHTINGS = {
    "default": (0.15, 0.35, 0.5),
    "z0.6": (0.1, 0.3, 0.6),
    "z0.7": (0.1, 0.2, 0.7),
    "z0.8": (0.05, 0.15, 0.8),
    "z0.4": (0.2, 0.4, 0.4),
    "z0.3": (0.2, 0.5, 0.3),
}
PAIRS = [("z0.4", "z0.7"), ("default", "z0.7"), ("default", "z0.8"), ("z0.3", "z0.7"), ("z0.4", "z0.6")]


def weighted(head: np.ndarray, near: np.ndarray, zs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each picture's blend at its own (head, neighbours, zero-training) weights, a row of `weights`."""
    return unit_rows(weights[:, 0:1] * head + weights[:, 1:2] * near + weights[:, 2:3] * zs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-per-source", type=int, default=500, help="the held-out galleries' cap")
    ap.add_argument("--train-max-per-source", type=int, default=0, help="training cap per source (0: all)")
    ap.add_argument("--probe-lambda", type=float, default=300.0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    settings = get_settings()
    ws = Workspace(settings, max_per_source=args.max_per_source, train_max_per_source=args.train_max_per_source)
    names = ws.prepared_sources()
    rows: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    for s in names:
        others = [o for o in names if o != s]
        opts = fold_options(DEFAULT_RUN, others)
        trained = train_one(ws, opts, progress=False)
        items = training_items(ws, opts)
        is_photo = np.array([[float(it.post.source in PHOTO_SOURCES)] for it in items], np.float32)
        x_train = ws.outputs(items).features
        # Photos are ~4 % of the training side: weigh the two kinds the same.
        w = np.where(is_photo[:, 0] > 0, 0.5 / max(is_photo.mean(), 1e-6), 0.5 / max(1 - is_photo.mean(), 1e-6))
        probe = fit_ridge(x_train, is_photo, args.probe_lambda, sample_weight=w)
        g = HeldOut(ws, s)
        feats, logits = g.outputs.features, g.outputs.logits
        p = np.clip(run_head(probe, feats)[:, 0], 0.0, 1.0)[:, None]
        head = unit_rows(run_head(trained.result.head, feats))
        zs = zeroshot_vectors(logits, trained.class_matrix, settings.zeroshot_top_k)
        assert trained.neighbours is not None
        near = trained.neighbours.vectors(feats)
        truth = np.full((len(feats), 1), float(s in PHOTO_SOURCES), np.float32)
        add = partial(record, rows, s, g, trained.text)
        mix = partial(weighted, head, near, zs)

        add(BASELINE, zs)
        add(DEFAULT, mix(np.tile(WEIGHTINGS["default"], (len(feats), 1))))
        for name, wt in WEIGHTINGS.items():
            if name != "default":
                add(f"fixed {name} {wt}", mix(np.tile(wt, (len(feats), 1))))
        for lo, hi in PAIRS:
            a, b = np.array(WEIGHTINGS[lo]), np.array(WEIGHTINGS[hi])
            add(f"photo probe: {lo} → {hi}", mix((1 - p) * a + p * b))
            add(f"oracle split: {lo} → {hi}", mix((1 - truth) * a + truth * b))
        log(
            f"{s}: fold done ({time.perf_counter() - started:.0f} s), probe's photo score: mean {float(p.mean()):.2f},"
            f" > 0.5 for {float((p > 0.5).mean()):.0%} of the pictures"
        )
    print_table(rows, names)
    if args.out:
        args.out.write_text(json.dumps(rows), encoding="utf-8")
        log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
