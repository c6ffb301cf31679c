"""Fine-tuning the backbone's last stage on two CPU cores, judged by leave-one-source-out (issue 13).

    JOINTSPACE_HOME=... nice -n 5 python bench/loso_finetune_tail.py --epochs 2 --out report.json

Issue 13 item 4 asks for fine-tuning of the last blocks within 30 minutes of 2 cores. A whole
forward pass of EfficientNet-Lite0 runs at ~37 pictures/s here, so fine-tuning through the network
(`jointspace train --finetune-steps`) is a GPU's work. The last stage is cheap: one MBConv block
(192 → 320 channels at 7 × 7) and the 1 × 1 `conv_head` (320 → 1,280), about 50 M multiply-adds a
picture against ~400 M for the network. So the input of that stage (7 × 7 × 192, float16, ~440 MB
for 23,556 pictures) is computed once and cached under ~/.cache/jointspace/bench, and each fold
trains a copy of the stage (batch norms frozen at ImageNet's statistics) with a linear map to the
text space on the training sources' word targets. The tuned stage's GeM p 4 pool then replaces the
default's features: the ridge head and neighbour bank are refitted on it with the default's options
and blended with the unchanged zero-training vector (the classifier keeps the untuned average
pool), beside the default and zero-training in the same run. A control row runs the untuned stage
through the same path and must reproduce the default.
"""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jointspace.encoders.backbone import Backbone
from jointspace.encoders.features import PictureDataset, image_key
from jointspace.encoders.image_encoders import run_head
from jointspace.encoders.knn import NeighbourBank, blend
from jointspace.encoders.losses import compute_loss
from jointspace.encoders.pooling import gem
from jointspace.encoders.training import train_head
from loso_folds import NW, ZW, finish, folds, log, onnx_session, parser, workspace
from torch.utils.data import DataLoader
from tqdm import tqdm

GEM_P = 4.0


class Trunk(torch.nn.Module):
    """timm's EfficientNet up to the input of its last stage."""

    def __init__(self, net: Any) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.net
        x = m.bn1(m.conv_stem(x))
        for block in list(m.blocks)[:-1]:
            x = block(x)
        return x


class Tail(torch.nn.Module):
    """The last stage, `conv_head` and `bn2` (with its activation), pooled by GeM."""

    def __init__(self, net: Any) -> None:
        super().__init__()
        self.stage = copy.deepcopy(list(net.blocks)[-1])
        self.conv_head = copy.deepcopy(net.conv_head)
        self.bn2 = copy.deepcopy(net.bn2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gem(self.bn2(self.conv_head(self.stage(x))), GEM_P)


def trunk_maps(paths: list[str], spec: Any, file: Path) -> np.ndarray:
    """Every picture's last-stage input, (N, C, H, W) float16, cached in `file` (keys alongside)."""
    keys = [image_key(p) for p in paths]
    keys_file = file.with_suffix(".keys.txt")
    if file.exists() and keys_file.exists() and keys_file.read_text(encoding="utf-8").split("\n") == keys:
        return np.load(file, mmap_mode="r")
    backbone = Backbone(spec, device="cpu")
    session = onnx_session(Trunk(backbone.model), spec.resolved_size, ["maps"])
    out: list[np.ndarray] = []
    loader = DataLoader(PictureDataset(paths, keys, "clean", backbone.transform), batch_size=8, num_workers=1)
    for batch in tqdm(loader, desc="trunk", unit="batch", mininterval=10):
        out.append(session.run(None, {"images": batch.numpy()})[0].astype(np.float16))
    maps = np.concatenate(out)
    file.parent.mkdir(parents=True, exist_ok=True)
    np.save(file, maps)
    keys_file.write_text("\n".join(keys), encoding="utf-8")
    return np.load(file, mmap_mode="r")


def tail_features(tail: Tail, maps: np.ndarray, rows: np.ndarray, batch: int = 256) -> np.ndarray:
    tail.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            x = torch.from_numpy(np.asarray(maps[rows[i : i + batch]], dtype=np.float32))
            out.append(tail(x).numpy())
    return np.concatenate(out)


def freeze_norms(module: torch.nn.Module) -> None:
    """Batch norms keep ImageNet's running statistics (batches of one source's pictures would skew them)."""
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def tune(
    base: Tail,
    maps: np.ndarray,
    rows: np.ndarray,
    y: np.ndarray,
    x0: np.ndarray,
    args: Any,
    seed: int,
) -> tuple[Tail, torch.nn.Module]:
    """A copy of `base` and a linear map to the text space trained on (maps[rows], y).

    The linear map starts at the ridge solution on the untuned, standardised features `x0`, so the
    first steps refine a working map rather than pull the stage towards a random one."""
    mu, sd = x0.mean(0), x0.std(0) + 1e-6
    z = (x0 - mu) / sd
    w = np.linalg.solve(z.T @ z + args.init_lambda * np.eye(z.shape[1]), z.T @ y)
    proj = torch.nn.Linear(z.shape[1], y.shape[1])
    with torch.no_grad():
        proj.weight.copy_(torch.from_numpy((w / sd[:, None]).T.astype(np.float32)))
        proj.bias.copy_(torch.from_numpy((-(mu / sd) @ w).astype(np.float32)))
    tail = copy.deepcopy(base).requires_grad_(True)  # the product's backbone is loaded frozen
    params = list(tail.parameters())
    if args.only_head:
        tail.stage.requires_grad_(False)
        params = list(tail.conv_head.parameters()) + list(tail.bn2.parameters())
    opt = torch.optim.AdamW(
        [{"params": params, "lr": args.lr}, {"params": proj.parameters(), "lr": args.proj_lr}], weight_decay=0.01
    )
    target = torch.from_numpy(y.astype(np.float32))
    gen = torch.Generator().manual_seed(seed)
    steps = args.epochs * max(1, len(rows) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[args.lr, args.proj_lr], total_steps=steps, pct_start=0.1)
    tail.train()
    freeze_norms(tail)
    done = 0
    for _ in range(args.epochs):
        order = torch.randperm(len(rows), generator=gen).numpy()
        for i in range(0, len(order) - args.batch + 1, args.batch):
            pick = order[i : i + args.batch]
            x = torch.from_numpy(np.asarray(maps[np.sort(rows[pick])], dtype=np.float32))
            t = target[pick[np.argsort(rows[pick])]]
            if args.cell_dropout:
                keep = (torch.rand(x.shape[0], 1, x.shape[2], x.shape[3], generator=gen) > args.cell_dropout).float()
                x = x * keep
            pred = F.normalize(proj(tail(x)), dim=-1)
            loss = compute_loss(args.loss, pred, F.normalize(t, dim=-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            done += 1
            if done >= steps:
                break
    moved = sum(float((a - b).norm()) for a, b in zip(tail.parameters(), base.parameters(), strict=True))
    log(f"tuned: {done} steps, last loss {loss.item():.4f}, summed weight change {moved:.3f}")
    tail.eval()
    return tail, proj.eval()


def refit(opts: Any, x: np.ndarray, y: np.ndarray, gx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The default's ridge head and neighbour bank fitted on (x, y): their vectors of the gallery `gx`."""
    head = train_head([x], y, opts.train, None, None, False, keep_last=True).head
    bank = NeighbourBank.fit(x, y, opts.neighbour_k, opts.neighbour_temperature)
    return run_head(head, gx), bank.vectors(gx)


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-4, help="the stage's learning rate")
    ap.add_argument("--proj-lr", type=float, default=1e-3, help="the linear map's learning rate")
    ap.add_argument("--init-lambda", type=float, default=300.0, help="ridge λ of the linear map's start")
    ap.add_argument("--loss", default="soft-contrastive", choices=("regression", "infonce", "soft-contrastive"))
    ap.add_argument("--only-head", action="store_true", help="tune conv_head and bn2 only, not the stage")
    ap.add_argument("--cell-dropout", type=float, default=0.0, help="share of the 7 × 7 cells zeroed in training")
    ap.add_argument("--tune-max-per-source", type=int, default=0, help="pictures a source gives the tuning (0: all)")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache/jointspace/bench/trunk-lite0.npy")
    ap.add_argument("--extract-only", action="store_true")
    args = ap.parse_args()
    settings, ws, names = workspace(args)
    assert ws.spec.pool == f"gem{GEM_P:g}", f"the bench assumes the default's GeM p {GEM_P:g} pool, not {ws.spec.pool}"
    every = ws.items(None, None, cap=False)
    t0 = time.perf_counter()
    maps = trunk_maps([it.post.image for it in every], ws.spec, args.cache)
    log(f"last-stage inputs of {len(every)} pictures ready ({time.perf_counter() - t0:.0f} s), {maps.shape}")
    if args.extract_only:
        return
    row_of = {image_key(it.post.image): i for i, it in enumerate(every)}
    base = Tail(Backbone(ws.spec, device="cpu").model).eval()

    def rows_of(items: list[Any]) -> np.ndarray:
        return np.array([row_of[image_key(it.post.image)] for it in items])

    untuned = tail_features(base, maps, np.arange(len(every)))
    clean = ws.outputs(every).features
    log(f"untuned stage against the product's cached GeM features: max |diff| {np.abs(untuned - clean).max():.4f}")
    tuned_name = (
        f"tuned {'conv_head' if args.only_head else 'last stage'} ({args.loss}, {args.epochs} ep, lr {args.lr:g}"
        + (f", cell dropout {args.cell_dropout:g}" if args.cell_dropout else "")
        + ")"
    )
    rows: dict = {}
    for n, fold in enumerate(folds(ws, names, settings, rows)):
        opts = fold.options
        targets, usable = ws.targets(fold.trained.text, fold.items, opts.targets)
        y = targets[usable]
        kept = [it for it, ok in zip(fold.items, usable, strict=True) if ok]
        tr, ga = rows_of(kept), rows_of(fold.gallery.items)
        h0, n0 = refit(opts, untuned[tr], y, untuned[ga])
        fold.add("control: untuned stage, refitted", blend(h0, fold.zs, ZW, n0, NW))
        sub = np.arange(len(tr))
        if args.tune_max_per_source:
            per: dict[str, list[int]] = {}
            for i, it in enumerate(kept):
                per.setdefault(it.post.source, []).append(i)
            sub = np.sort(np.concatenate([np.array(v[: args.tune_max_per_source]) for v in per.values()]))
        t1 = time.perf_counter()
        tail, proj = tune(base, maps, tr[sub], y[sub], untuned[tr[sub]], args, seed=n)
        log(f"{fold.source}: tuned on {len(sub)} pictures ({time.perf_counter() - t1:.0f} s)")
        x, gx = tail_features(tail, maps, tr), tail_features(tail, maps, ga)
        h1, n1 = refit(opts, x, y, gx)
        fold.add(tuned_name, blend(h1, fold.zs, ZW, n1, NW))
        with torch.no_grad():
            p1 = proj(torch.from_numpy(gx)).numpy()
        fold.add(tuned_name + ", its own linear map as the head", blend(p1, fold.zs, ZW, n1, NW))
        fold.add(tuned_name + ", tuned bank only", blend(h0, fold.zs, ZW, n1, NW))
    finish(rows, names, args.out)


if __name__ == "__main__":
    main()
