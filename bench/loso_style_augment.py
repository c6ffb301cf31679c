"""Training pictures redrawn in other styles, judged by leave-one-source-out (issue 13).

    JOINTSPACE_HOME=... nice -n 5 python bench/loso_style_augment.py --max-per-source 500 --out report.json

The default's neighbour bank transfers labels from the training pictures that look most like a new
picture. Across sources the same thing is drawn in another style: a colour emoji, a line icon
(tabler), a filled glyph (mdi), a clip-art drawing. Here every drawing of the training side is also
redrawn as line art and as a silhouette (`encoders/augment.py`: `line-art`, `silhouette`), and those
copies join the neighbour bank (and, in some rows, the ridge head) with their picture's targets, so
a held-out line icon can find the line-art copy of another source's drawing of the same thing.
Photos are not redrawn (the variants assume a drawing on a plain background).

Rows, each fold trained as the product trains (`train_one` on every picture of the other sources),
beside the zero-training baseline and the default in the same run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jointspace.encoders.image_encoders import run_head
from jointspace.encoders.knn import NeighbourBank, blend
from jointspace.encoders.ridge import fit_ridge
from jointspace.encoders.training_runs import PHOTO_SOURCES
from loso_folds import NW, ZW, finish, folds, log, parser, workspace


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--variants", nargs="+", default=["line-art", "silhouette"])
    args = ap.parse_args()
    settings, ws, names = workspace(args)
    drawn = [s for s in names if s not in PHOTO_SOURCES]
    t0 = time.perf_counter()
    for v in args.variants:  # extract once, cached on disk
        ws.outputs([it for s in drawn for it in ws.training_items(s)], v)
    log(f"variant features ready ({time.perf_counter() - t0:.0f} s)")
    combos: list[tuple[str, ...]] = [(v,) for v in args.variants]
    if len(args.variants) > 1:
        combos.append(tuple(args.variants))
    rows: dict = {}
    for fold in folds(ws, names, settings, rows):
        opts = fold.options
        targets, usable = ws.targets(fold.trained.text, fold.items, opts.targets)
        clean_x = ws.outputs(fold.items).features[usable]
        y = targets[usable]
        redraw = np.array([it.post.source not in PHOTO_SOURCES for it in fold.items])[usable]
        kept = [it for it, ok in zip(fold.items, usable, strict=True) if ok]
        drawn_items = [it for it, r in zip(kept, redraw, strict=True) if r]
        extra = {v: ws.outputs(drawn_items, v).features for v in args.variants}
        feats = fold.gallery.outputs.features
        for combo in combos:
            x = np.vstack([clean_x, *(extra[v] for v in combo)])
            yy = np.vstack([y, *(y[redraw] for _ in combo)])
            bank = NeighbourBank.fit(x, yy, opts.neighbour_k, opts.neighbour_temperature)
            near_aug = bank.vectors(feats)
            label = "+".join(combo)
            fold.add(f"bank + {label}", blend(fold.head, fold.zs, ZW, near_aug, NW))
            head_aug = run_head(fit_ridge(x, yy, opts.train.ridge_lambda), feats)
            fold.add(f"bank + head + {label}", blend(head_aug, fold.zs, ZW, near_aug, NW))
            wide = NeighbourBank(bank.mean, bank.scale, bank.keys, bank.targets, 30, opts.neighbour_temperature)
            fold.add(f"bank k30 + head + {label}", blend(head_aug, fold.zs, ZW, wide.vectors(feats), NW))
    finish(rows, names, args.out)


if __name__ == "__main__":
    main()
