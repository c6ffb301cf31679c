"""The image encoder's own speed on the CPU: the eager torch network in batches of 64 (how jointspace
ran it before) against the path it runs now (the network exported to ONNX Runtime, a few pictures a
call; encoders/backbone_onnx.py), on the same pictures in one run, with the largest difference
between their features.

    python bench/encoder_speed.py                 # 256 pictures of the prepared data, 3 rounds
    python bench/encoder_speed.py --n 128 --rounds 2

Prints images/s and CPU ms per image for each path and round, and the ratios of the best rounds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from jointspace.app import open_bundle, settings_from_environment

sys.path.insert(0, str(Path(__file__).resolve().parent))
from backbone_speed import best_of_rounds, pictures  # the same pictures, the same rounds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data", type=Path, default=None, help="prepared data (default: the home's)")
    args = ap.parse_args()
    settings = settings_from_environment()
    backbone = getattr(open_bundle(settings).image, "backbone", None)
    if backbone is None:
        raise SystemExit("the bundle's image encoder has no backbone network to time")
    images = pictures(args.data or settings.data_dir, args.n, settings)
    x = torch.stack([backbone.transform(im.convert("RGB")) for im in images])

    def eager() -> torch.Tensor:
        with torch.inference_mode():
            return torch.cat([backbone.pooled_eager(x[i : i + 64]) for i in range(0, len(x), 64)])

    def onnx() -> torch.Tensor:
        with torch.inference_mode():
            return backbone._cpu_pooled(x)

    paths = {"eager, batches of 64": eager, "ONNX Runtime (default)": onnx}
    outputs = {name: run() for name, run in paths.items()}  # warm-up (and the ONNX export itself)
    diff = float((outputs[next(iter(paths))] - outputs["ONNX Runtime (default)"]).abs().max())
    best = best_of_rounds(paths, args.rounds, len(x))
    (eager_wall, eager_cpu), (fast_wall, fast_cpu) = best.values()
    print(
        f"\n{len(x)} pictures, {torch.get_num_threads()} torch threads, best of {args.rounds}: ONNX Runtime path "
        f"{eager_wall / fast_wall:.2f} × the eager images/s, {fast_cpu / eager_cpu:.2f} × its CPU per image; "
        f"largest feature difference {diff:.1e}"
    )


if __name__ == "__main__":
    main()
