"""Image encoder throughput on a GPU: float32 against autocast (float16, what jointspace runs on CUDA,
and bfloat16), batch 64 to 512, in one run; then the whole encoder call a worker makes
(`embed_images` on decoded PIL pictures: CPU transforms + forward pass + the bundle's head).

    python bench/gpu_encoder.py --data <prepared data> --out out/      # bench/gpu.sh runs it

Every figure is images/s with its ratio to float32 at the same batch size, measured in the same run.
CUDA timings synchronise before the clock stops; each cell is the median of --repeats after
--warmup passes. Writes a markdown table and JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from jointspace.app import open_bundle, settings_from_environment

BATCHES = (64, 128, 256, 512)
PRECISIONS = {"float32": None, "float16 (autocast)": torch.float16, "bfloat16 (autocast)": torch.bfloat16}


def pictures(data: Path | None, n: int) -> list[Image.Image]:
    """n decoded RGB pictures: the prepared data's when given, else noise at photo size."""
    out: list[Image.Image] = []
    if data is not None and (data / "all.jsonl").is_file():
        for line in (data / "all.jsonl").read_text().splitlines():
            try:
                with Image.open(data / json.loads(line)["image"]) as image:
                    out.append(image.convert("RGB"))
            except OSError:
                continue
            if len(out) == n:
                break
    rng = np.random.default_rng(0)
    while len(out) < n:
        out.append(Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)))
    return [out[i % len(out)] for i in range(n)]


def timed(fn, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("bench/out/gpu"))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this bench is for a GPU machine (bench/gpu.sh)")
    settings = settings_from_environment().model_copy(update={"device": "cuda"})
    bundle = open_bundle(settings)
    image: Any = bundle.image  # a CNN-backed encoder (not every ImageEncoder has a backbone)
    backbone = image.backbone  # the bundle's own network, as loaded for CUDA
    size = backbone.spec.resolved_size
    images = pictures(args.data, max(BATCHES))
    tensors = torch.stack([backbone.transform(im) for im in images]).to("cuda")
    rows = []
    for batch in BATCHES:
        x = tensors[:batch].contiguous(memory_format=torch.channels_last)
        base = None
        for name, dtype in PRECISIONS.items():

            def forward(x: torch.Tensor = x, dtype: torch.dtype | None = dtype) -> None:
                with torch.inference_mode(), torch.autocast("cuda", dtype=dtype or torch.float32, enabled=bool(dtype)):
                    backbone.classify(backbone.pooled_eager(x))

            rate = batch / timed(forward, args.repeats, args.warmup)
            base = base or rate
            rows.append(
                {
                    "stage": "forward pass (tensors on the GPU)",
                    "batch": batch,
                    "precision": name,
                    "images_s": rate,
                    "x_fp32": rate / base,
                }
            )
        # What a worker's batch costs: PIL transforms on the CPU, the copy, the forward pass, the head.
        rate = batch / timed(lambda b=batch: bundle.image.embed_images(images[:b]), max(3, args.repeats // 3), 1)
        rows.append(
            {
                "stage": "embed_images (PIL → vectors, as shipped)",
                "batch": batch,
                "precision": "float16 (autocast)",
                "images_s": rate,
                "x_fp32": None,
            }
        )
    lines = [
        f"{torch.cuda.get_device_name()} · torch {torch.__version__} · {backbone.spec.name} at {size} px · "
        f"median of {args.repeats} after {args.warmup} warm-up passes",
        "",
        "| stage | batch | precision | images/s | × float32, same batch |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    for r in rows:
        ratio = f"{r['x_fp32']:.2f}" if r["x_fp32"] else "-"
        lines.append(f"| {r['stage']} | {r['batch']} | {r['precision']} | {r['images_s']:.0f} | {ratio} |")
    print("\n".join(lines))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_encoder.md").write_text("\n".join(lines) + "\n")
    (args.out / "gpu_encoder.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
