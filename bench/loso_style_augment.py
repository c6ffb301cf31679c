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
from jointspace.encoders.knn import NeighbourBank, blend
from jointspace.encoders.ridge import fit_ridge
from jointspace.encoders.training_runs import DEFAULT_RUN, PHOTO_SOURCES, Workspace, train_one, training_items
from loso_class_refit import BASELINE, DEFAULT, log, print_table, record

from jointspace.settings import get_settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-per-source", type=int, default=500, help="the held-out galleries' cap")
    ap.add_argument("--train-max-per-source", type=int, default=0, help="training cap per source (0: all)")
    ap.add_argument("--variants", nargs="+", default=["line-art", "silhouette"])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    settings = get_settings()
    ws = Workspace(settings, max_per_source=args.max_per_source, train_max_per_source=args.train_max_per_source)
    names = ws.prepared_sources()
    top_k = settings.zeroshot_top_k
    nw, zw = DEFAULT_RUN.neighbour_weight, DEFAULT_RUN.zeroshot_weight
    drawn = [s for s in names if s not in PHOTO_SOURCES]
    t0 = time.perf_counter()
    for v in args.variants:  # extract once, cached on disk
        ws.outputs([it for s in drawn for it in ws.training_items(s)], v)
    log(f"variant features ready ({time.perf_counter() - t0:.0f} s)")
    combos: list[tuple[str, ...]] = [(v,) for v in args.variants]
    if len(args.variants) > 1:
        combos.append(tuple(args.variants))
    rows: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    for s in names:
        others = [o for o in names if o != s]
        opts = fold_options(DEFAULT_RUN, others)
        trained = train_one(ws, opts, progress=False)
        items = training_items(ws, opts)
        targets, usable = ws.targets(trained.text, items, opts.targets)
        clean_x = ws.outputs(items).features[usable]
        y = targets[usable]
        redraw = np.array([it.post.source not in PHOTO_SOURCES for it in items])[usable]
        kept = [it for it, ok in zip(items, usable, strict=True) if ok]
        drawn_items = [it for it, r in zip(kept, redraw, strict=True) if r]
        extra = {v: ws.outputs(drawn_items, v).features for v in args.variants}
        g = HeldOut(ws, s)
        feats, logits = g.outputs.features, g.outputs.logits
        head = run_head(trained.result.head, feats)
        zs = zeroshot_vectors(logits, trained.class_matrix, top_k)
        assert trained.neighbours is not None
        near = trained.neighbours.vectors(feats)
        add = partial(record, rows, s, g, trained.text)

        add(BASELINE, zs)
        add(DEFAULT, blend(head, zs, zw, near, nw))
        for combo in combos:
            x = np.vstack([clean_x, *(extra[v] for v in combo)])
            yy = np.vstack([y, *(y[redraw] for _ in combo)])
            bank = NeighbourBank.fit(x, yy, opts.neighbour_k, opts.neighbour_temperature)
            near_aug = bank.vectors(feats)
            label = "+".join(combo)
            add(f"bank + {label}", blend(head, zs, zw, near_aug, nw))
            head_aug = run_head(fit_ridge(x, yy, opts.train.ridge_lambda), feats)
            add(f"bank + head + {label}", blend(head_aug, zs, zw, near_aug, nw))
            for k in (30,):
                bank_k = NeighbourBank(bank.mean, bank.scale, bank.keys, bank.targets, k, opts.neighbour_temperature)
                add(f"bank k{k} + head + {label}", blend(head_aug, zs, zw, bank_k.vectors(feats), nw))
        log(f"{s}: fold done ({time.perf_counter() - started:.0f} s)")
    print_table(rows, names)
    if args.out:
        args.out.write_text(json.dumps(rows), encoding="utf-8")
        log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
