"""Is `near_duplicate_threshold` right for the shipped bundle? Collapsing should merge a picture with
its re-posted copies (re-encoded, resized, cropped, brightened) and never two different pictures.
This embeds a gallery of prepared pictures and a perturbed copy of each with the default bundle and,
for each threshold, prints the share of copies that would be collapsed into their original (wanted)
beside the share of pictures whose most similar *other* picture in the gallery is at least that
similar (unwanted: a page that shows both would lose one), with the worst distinct pairs named.

    python bench/near_duplicates.py                  # 1,500 pictures spread over the prepared data
    python bench/near_duplicates.py --n 3000 --thresholds 0.9 0.95 0.97
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from jointspace.workers.runtime import decode_limits
from PIL import Image, ImageEnhance
from tqdm import tqdm

from jointspace.app import open_bundle, settings_from_environment
from jointspace.images import load_image
from jointspace.protocols import ImageEncoder


def jpeg(image: Image.Image, quality: int = 60) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def half_size(image: Image.Image) -> Image.Image:
    return image.resize((max(1, image.width // 2), max(1, image.height // 2)), Image.Resampling.BILINEAR)


def crop_90(image: Image.Image) -> Image.Image:
    dx, dy = image.width // 20, image.height // 20
    return image.crop((dx, dy, image.width - dx, image.height - dy))


def brighter(image: Image.Image) -> Image.Image:
    return ImageEnhance.Brightness(image.convert("RGB")).enhance(1.15)


def repost(image: Image.Image) -> Image.Image:
    """What a re-post usually does: smaller, cropped a little, re-encoded."""
    return jpeg(half_size(crop_90(image)), quality=70)


PERTURBATIONS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "jpeg q60": jpeg,
    "half size": half_size,
    "crop 90 %": crop_90,
    "brightness +15 %": brighter,
    "re-post (crop, half, jpeg q70)": repost,
}


def embed(encoder: ImageEncoder, images: list[Image.Image], label: str, batch: int = 64) -> np.ndarray:
    out = [encoder.embed_images(images[i : i + batch]) for i in tqdm(range(0, len(images), batch), desc=label)]
    return np.concatenate(out).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--data", type=Path, default=None, help="prepared data (default: the home's)")
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.9, 0.95, 0.98, 0.99, 0.999, 0.9999, 0.99999])
    ap.add_argument("--worst", type=int, default=8, help="closest distinct pairs to list")
    ap.add_argument("--save", type=Path, default=None, help="write the vectors and picture paths to this .npz")
    args = ap.parse_args()
    settings = settings_from_environment()
    data = args.data or settings.data_dir
    rows = [json.loads(line) for line in (data / "all.jsonl").read_text().splitlines()]
    rows = rows[:: max(1, len(rows) // args.n)][: args.n]
    images = [load_image(data / row["image"], decode_limits(settings)).convert("RGB") for row in rows]
    encoder = open_bundle(settings).image
    gallery = embed(encoder, images, "originals")
    copies = {name: embed(encoder, [p(im) for im in images], name) for name, p in PERTURBATIONS.items()}

    if args.save:
        arrays: dict[str, np.ndarray] = {"gallery": gallery, "paths": np.array([r["image"] for r in rows]), **copies}
        np.savez(args.save, **arrays)  # type: ignore[arg-type]
    sims = gallery @ gallery.T
    np.fill_diagonal(sims, -np.inf)
    nearest = sims.argmax(axis=1)
    nearest_sim = sims[np.arange(len(rows)), nearest]
    copy_sim = {name: np.einsum("ij,ij->i", gallery, c) for name, c in copies.items()}

    print(
        f"\n{len(rows)} pictures from {len({r['source'] for r in rows})} sources, "
        f"image encoder {type(encoder).__name__}"
    )
    header = ["threshold", *[f"copies missed: {n}" for n in PERTURBATIONS], "pictures with another ≥ t"]
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for t in args.thresholds:
        apart = [f"{float(np.mean(s < t)):.3f}" for s in copy_sim.values()]
        print(f"| {t:g} | " + " | ".join(apart) + f" | {float(np.mean(nearest_sim >= t)):.3f} |")
    for name, s in copy_sim.items():
        print(
            f"{name}: similarity to the original p1 {np.percentile(s, 1):.3f}, p5 {np.percentile(s, 5):.3f}, "
            f"median {np.median(s):.3f}"
        )
    print(
        f"nearest distinct picture: median {np.median(nearest_sim):.3f}, p95 {np.percentile(nearest_sim, 95):.3f}, "
        f"p99 {np.percentile(nearest_sim, 99):.3f}, max {nearest_sim.max():.3f}"
    )
    print("closest distinct pairs:")
    for i in np.argsort(-nearest_sim)[: args.worst : 1]:
        j = int(nearest[i])
        print(f"  {nearest_sim[i]:.3f}  {rows[i]['image']}  ~  {rows[j]['image']}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
