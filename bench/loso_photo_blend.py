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

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jointspace.encoders.image_encoders import run_head
from jointspace.encoders.ridge import fit_ridge
from jointspace.encoders.training_runs import PHOTO_SOURCES
from jointspace.encoders.vectors import unit_rows
from loso_folds import finish, folds, log, parser, workspace

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


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--probe-lambda", type=float, default=1.0)
    args = ap.parse_args()
    settings, ws, names = workspace(args)
    rows: dict = {}
    for fold in folds(ws, names, settings, rows):
        is_photo = np.array([[float(it.post.source in PHOTO_SOURCES)] for it in fold.items], np.float32)
        share = float(is_photo.mean())
        # Photos are ~4 % of the training side: weigh the two kinds the same.
        w = np.where(is_photo[:, 0] > 0, 0.5 / max(share, 1e-6), 0.5 / max(1 - share, 1e-6))
        probe = fit_ridge(ws.outputs(fold.items).features, is_photo, args.probe_lambda, sample_weight=w)
        feats = fold.gallery.outputs.features
        p = np.clip(run_head(probe, feats)[:, 0], 0.0, 1.0)[:, None]
        head = fold.head  # raw, as the product blends it
        truth = np.full((len(feats), 1), float(fold.source in PHOTO_SOURCES), np.float32)

        def mix(weights: np.ndarray, head: np.ndarray = head, near: np.ndarray = fold.near, zs: np.ndarray = fold.zs):
            """Each picture's blend at its own (head, neighbours, zero-training) weights."""
            return unit_rows(weights[:, 0:1] * head + weights[:, 1:2] * near + weights[:, 2:3] * zs)

        for name, wt in WEIGHTINGS.items():
            if name != "default":  # the default's row comes with the fold
                fold.add(f"fixed {name} {wt}", mix(np.tile(wt, (len(feats), 1))))
        for lo, hi in PAIRS:
            a, b = np.array(WEIGHTINGS[lo]), np.array(WEIGHTINGS[hi])
            fold.add(f"photo probe: {lo} → {hi}", mix((1 - p) * a + p * b))
            fold.add(f"oracle split: {lo} → {hi}", mix((1 - truth) * a + truth * b))
        above = float((p > 0.5).mean())
        log(f"{fold.source}: the probe's photo score: mean {float(p.mean()):.2f}, > 0.5 for {above:.0%}")
    finish(rows, names, args.out)


if __name__ == "__main__":
    main()
