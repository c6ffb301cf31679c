"""Other pictures' features from the same backbone pass, judged by leave-one-source-out (issue 13).

    JOINTSPACE_HOME=... nice -n 5 python bench/loso_pooling.py --max-per-source 500 --out report.json
    JOINTSPACE_HOME=... nice -n 5 python bench/loso_pooling.py --tune     # blend, λ and bank around GeM p 4

The default's head and neighbour bank read Lite0's average-pooled final map (1280-d): on a drawing
on white most of the 7×7 cells are background, so the drawn thing is averaged with paper. Here one
pass of the same network also keeps the final map's max and GeM (p 3) pools and the average pools
of the last three stages (112, 192, 320 channels; earlier layers carry shape and style more than
ImageNet's classes, and are said to carry across domains better). The zero-training vector keeps
the product's logits, so only the trained parts (ridge head, neighbour bank) see other features.
Each fold is trained as the product trains (`train_one` on every picture of the other sources); the
rows refit the head and bank on the other features with the same options, beside the zero-training
baseline and the default in the same run. Nothing is cached in the product's feature cache: the
pools live in one bench file under ~/.cache/jointspace/bench.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jointspace.encoders.backbone import Backbone
from jointspace.encoders.features import PictureDataset, image_key
from jointspace.encoders.image_encoders import run_head, zeroshot_vectors
from jointspace.encoders.knn import NeighbourBank, blend
from jointspace.encoders.training import train_head
from loso_folds import NW, ZW, finish, folds, log, onnx_session, parser, workspace
from torch.utils.data import DataLoader
from tqdm import tqdm

GEM_P = (2, 3, 4, 6)
POOLS = ("avg", "max", *(f"gem{p}" for p in GEM_P), "s4", "s5", "s6", "g4", "g5", "g6")


class Pools(torch.nn.Module):
    """timm's EfficientNet forward_features, keeping several pools of one pass."""

    def __init__(self, net: Any) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        m = self.net
        x = m.bn1(m.conv_stem(x))
        stages = []
        for i, block in enumerate(m.blocks):
            x = block(x)
            if i >= 4:
                stages.append(x)
        x = m.bn2(m.conv_head(x))
        # The last stages' outputs are not rectified (linear bottlenecks): GeM takes their magnitude.
        return (
            x.mean((2, 3)),
            x.amax((2, 3)),
            *(gem(x, p) for p in GEM_P),
            *(s.mean((2, 3)) for s in stages),
            *(gem(s.abs(), 3) for s in stages),
        )


def gem(x: torch.Tensor, p: float) -> torch.Tensor:
    """Generalised mean pooling (Radenović et al.): p 1 is the average, large p tends to the max."""
    return x.clamp(min=1e-6).pow(p).mean((2, 3)).pow(1.0 / p)


def extract(paths: list[str], spec: Any, file: Path) -> dict[str, np.ndarray]:
    """Every pool of every picture, cached in `file` (keyed by the product's image key)."""
    keys = [image_key(p) for p in paths]
    if file.exists():
        with np.load(file) as data:
            if [str(k) for k in data["keys"]] == keys:
                return {p: data[p].astype(np.float32) for p in POOLS}
    backbone = Backbone(spec, device="cpu")
    session = onnx_session(Pools(backbone.model), spec.resolved_size, list(POOLS))
    out: dict[str, list[np.ndarray]] = {p: [] for p in POOLS}
    loader = DataLoader(PictureDataset(paths, keys, "clean", backbone.transform), batch_size=4, num_workers=1)
    for batch in tqdm(loader, desc="pools", unit="batch", mininterval=10):
        for p, a in zip(POOLS, session.run(None, {"images": batch.numpy()}), strict=True):
            out[p].append(a)
    pools = {p: np.concatenate(v).astype(np.float32) for p, v in out.items()}
    file.parent.mkdir(parents=True, exist_ok=True)
    save: Any = np.savez  # its `**arrays` would be checked against allow_pickle
    save(file, keys=np.array(keys), **{p: v.astype(np.float16) for p, v in pools.items()})
    return pools


# Each row: the pools its features concatenate (the head and the bank standardise every column, so
# a stage's weight in the bank's cosine is its share of the columns), and the pool whose class
# logits make the zero-training vector (None: the product's, from the average).
ROWS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "avg (the default's features, refitted here)": (("avg",), None),
    "max": (("max",), None),
    **{f"gem p{p}": ((f"gem{p}",), None) for p in GEM_P},
    "gem p3 + stages 5-7 (avg)": (("gem3", "s4", "s5", "s6"), None),
    "gem p3 + stages 5-7 (gem)": (("gem3", "g4", "g5", "g6"), None),
    "gem p3 + stage 7 (gem)": (("gem3", "g6"), None),
    "avg + gem p4": (("avg", "gem4"), None),
    **{f"gem p{p} everywhere (zero-training from its logits too)": ((f"gem{p}",), f"gem{p}") for p in GEM_P},
}


# (head, neighbours, zero-training) weights; the default is 0.15 / 0.35 / 0.5.
WEIGHTS = ((0.15, 0.35, 0.5), (0.1, 0.4, 0.5), (0.2, 0.3, 0.5), (0.15, 0.45, 0.4), (0.1, 0.5, 0.4), (0.1, 0.3, 0.6))
LAMBDAS = (100.0, 1000.0)
BANKS = ((5, 0.1), (20, 0.1), (10, 0.05), (10, 0.2))  # (k, temperature); the default is (10, 0.1)


def tune(fold: Any, x: np.ndarray, y: np.ndarray, gx: np.ndarray) -> None:
    """Rows around the GeM p 4 default: blend weights, the ridge λ and the bank's k and temperature,
    one changed at a time (the settings were chosen on average-pooled features)."""
    opts = fold.options

    def head(lam: float) -> np.ndarray:
        config = replace(opts.train, ridge_lambda=lam)
        return run_head(train_head([x], y, config, None, None, False, keep_last=True).head, gx)

    def near(k: int, t: float) -> np.ndarray:
        return NeighbourBank.fit(x, y, k, t).vectors(gx)

    h, n = head(opts.train.ridge_lambda), near(opts.neighbour_k, opts.neighbour_temperature)
    for hw, nw, zw in WEIGHTS:
        fold.add(f"gem p4, weights {hw} / {nw} / {zw}", blend(h, fold.zs, zw, n, nw))
        assert abs(hw + nw + zw - 1) < 1e-9
    for lam in LAMBDAS:
        fold.add(f"gem p4, ridge λ {lam:g}", blend(head(lam), fold.zs, ZW, n, NW))
    for k, t in BANKS:
        fold.add(f"gem p4, bank k {k}, temperature {t:g}", blend(h, fold.zs, ZW, near(k, t), NW))


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--rows", nargs="*", default=None, help="the rows to run, by name [all]")
    ap.add_argument("--tune", action="store_true", help="instead: the GeM p 4 default's blend weights, λ and bank")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache/jointspace/bench/pools-lite0-v2.npz")
    args = ap.parse_args()
    settings, ws, names = workspace(args)
    every = ws.items(None, None, cap=False)
    t0 = time.perf_counter()
    pools = extract([it.post.image for it in every], ws.spec, args.cache)
    row_of = {image_key(it.post.image): i for i, it in enumerate(every)}
    log(f"pools of {len(every)} pictures ready ({time.perf_counter() - t0:.0f} s)")
    clean = ws.outputs(every).features
    drift = float(np.abs(pools[ws.spec.pool] - clean).max())
    log(f"{ws.spec.pool} pool against the product's cached features: max |diff| {drift:.4f} (float16 cache)")

    def features(items: list[Any], combo: tuple[str, ...]) -> np.ndarray:
        idx = np.array([row_of[image_key(it.post.image)] for it in items])
        return np.hstack([pools[p][idx] for p in combo])

    chosen = {} if args.tune else {n: r for n, r in ROWS.items() if args.rows is None or n in args.rows}
    classifier = Backbone(ws.spec, device="cpu") if any(zp for _, zp in chosen.values()) else None
    rows: dict = {}
    for fold in folds(ws, names, settings, rows):
        opts = fold.options
        targets, usable = ws.targets(fold.trained.text, fold.items, opts.targets)
        y = targets[usable]
        kept = [it for it, ok in zip(fold.items, usable, strict=True) if ok]
        for name, (combo, zs_pool) in chosen.items():
            x = features(kept, combo)
            gx = features(fold.gallery.items, combo)
            head = train_head([x], y, opts.train, None, None, False, keep_last=True).head
            bank = NeighbourBank.fit(x, y, opts.neighbour_k, opts.neighbour_temperature)
            zs = fold.zs
            if zs_pool is not None and classifier is not None:
                logits = classifier.logits_of(features(fold.gallery.items, (zs_pool,)))
                zs = zeroshot_vectors(logits, fold.trained.class_matrix, settings.zeroshot_top_k)
                fold.add(f"zero-training from {zs_pool}", zs)
            fold.add(name, blend(run_head(head, gx), zs, ZW, bank.vectors(gx), NW))
        if args.tune:
            tune(fold, features(kept, ("gem4",)), y, features(fold.gallery.items, ("gem4",)))
    finish(rows, names, args.out)


if __name__ == "__main__":
    main()
