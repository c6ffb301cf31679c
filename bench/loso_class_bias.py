"""The zero-training vector with ImageNet's classes de-biased, judged by leave-one-source-out (issue 13).

    JOINTSPACE_HOME=... nice -n 5 python bench/loso_class_bias.py --max-per-source 500 --out report.json

Half of the default's vector is the zero-training prior: the classifier's top classes read by the
sentence model. On drawings and icons the ImageNet classifier favours a few classes whatever is
drawn ("envelope", "web site", "comic book"), so those classes' texts sit in many pictures' vectors
and push them together. Here each picture's logits lose β × a class bias before the top classes are
taken (logit adjustment), the bias being the mean log-probability of each class over:
- `train`: the training pictures of the other sources, each source weighing the same (what a
  bundle could ship);
- `gallery`: the held-out source's own pictures (transductive: what an index could keep as a running
  mean of what it holds; here as the upper bound of the idea).
Rows: zero-training alone and the default's blend with the de-biased prior, beside zero-training
and the default in the same run. Nothing else changes (head, bank and weights are the default's).
`--temperatures T ...` adds rows with the classifier's softmax flattened instead (logits / T): on
average-pooled features T 2 had been +0.007 with the interval touching 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jointspace.encoders.image_encoders import zeroshot_vectors
from jointspace.encoders.knn import blend
from loso_folds import NW, ZW, finish, folds, log, parser, workspace

BETAS = (0.5, 1.0)


def log_probs(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--temperatures", nargs="*", type=float, default=[])
    args = ap.parse_args()
    settings, ws, names = workspace(args)
    rows: dict = {}
    k = settings.zeroshot_top_k
    for fold in folds(ws, names, settings, rows):
        logits = fold.gallery.outputs.logits.astype(np.float32)
        train_logits = ws.outputs(fold.items).logits.astype(np.float32)
        sources = np.array([it.post.source for it in fold.items])
        lp = log_probs(train_logits)
        biases = {
            "train": np.mean([lp[sources == s].mean(0) for s in np.unique(sources)], axis=0),
            "gallery": log_probs(logits).mean(0),
        }
        for where, bias in biases.items():
            for beta in BETAS:
                zs = zeroshot_vectors(logits - beta * bias, fold.trained.class_matrix, k)
                fold.add(f"zero-training, {where} bias β {beta}", zs)
                fold.add(f"default, {where} bias β {beta}", blend(fold.head, zs, ZW, fold.near, NW))
        for t in args.temperatures:
            zs = zeroshot_vectors(logits / t, fold.trained.class_matrix, k)
            fold.add(f"default, softmax temperature {t:g}", blend(fold.head, zs, ZW, fold.near, NW))
        log(f"{fold.source}: top biased classes {np.argsort(-biases['train'])[:5].tolist()}")
    finish(rows, names, args.out)


if __name__ == "__main__":
    main()
