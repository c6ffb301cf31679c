"""A small real corpus for the API tests: openclipart drawings whose captions mention dogs and parks,
and tuxpaint stamps of other things, from Debian's packages, dealt to three cities.

Built from the data stage's public helpers (unpack, scan, rasterise): seconds, and the .deb is
cached under $JOINTSPACE_HOME/cache/debs after the first run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CITIES = ("paris", "london", "tokyo")
N_DOGS = 8
N_PARKS = 6
N_OTHERS = 16
SIZE = 128


@dataclass(frozen=True, slots=True)
class Corpus:
    root: Path  # the media root: every image lies below it
    posts_file: Path  # JSONL, image paths relative to `root`
    posts: list[dict]


def build_api_corpus(root: Path) -> Corpus:
    from jointspace.datasets import raster
    from jointspace.datasets.debian import unpack
    from jointspace.datasets.prepare import cache_dir_of, select
    from jointspace.datasets.scanners import get_source

    from jointspace.settings import get_settings

    settings = get_settings()

    def scan(name: str) -> list:
        spec = get_source(name)
        package = unpack(spec.package, cache_dir_of(settings.home), settings.data_dir / "packages")
        return select(spec.scan(package.root), None)

    drawings = scan("openclipart")
    dogs = [i for i in drawings if "dog" in i.keywords]
    parks = [i for i in drawings if "park" in i.keywords and "dog" not in i.keywords]
    # The rest from tuxpaint: PNG stamps, much quicker to prepare than SVGs.
    stamps = [i for i in scan("tuxpaint") if "dog" not in i.keywords and "park" not in i.keywords]
    others = stamps[:: max(1, len(stamps) // (2 * N_OTHERS))]
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    chosen: list[tuple[object, Path]] = []
    for candidates, quota in ((dogs, N_DOGS), (parks, N_PARKS), (others, N_OTHERS)):
        taken = 0
        for item in candidates:
            if taken == quota:
                break
            target = images / f"{item.id}.png"
            if not target.exists():
                try:
                    raster.save(raster.load(item.image, SIZE), target)
                except Exception:  # a drawing cairosvg cannot render: take the next one
                    continue
            chosen.append((item, target))
            taken += 1
    posts = []
    for index, (item, target) in enumerate(chosen):
        posts.append(
            {
                "id": item.id,
                "image": f"images/{target.name}",
                "caption": item.caption,
                "hashtags": list(item.hashtags)[:6],
                "city": CITIES[index % len(CITIES)],
                "created_at": f"2024-0{1 + index % 9}-1{index % 10}T12:00:00+00:00",
                "source": item.source,
            }
        )
    posts_file = root / "posts.jsonl"
    posts_file.write_text("".join(json.dumps(p) + "\n" for p in posts), encoding="utf-8")
    return Corpus(root=root, posts_file=posts_file, posts=posts)
