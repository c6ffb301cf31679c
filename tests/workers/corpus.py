"""Small on-disk corpora of posts: good solid-colour images and every kind of broken one."""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from jointspace.settings import Settings

from .histogram_bundle import COLOURS, FACTORY, solid_image

# Pair these limits with the broken files below (Settings.image_max_pixels / image_max_bytes).
TEST_MAX_PIXELS = 1_000_000
TEST_MAX_BYTES = 300_000


def in_process_settings(home: Path, **values: object) -> Settings:
    """Broker-less settings over the histogram bundle: batches of 4 (so a small corpus spans
    several), these image limits and two decode threads; everything else is the default. `values`
    add what isolates a test (es_url, es_index_alias)."""
    return Settings(
        home=home,
        broker_url=None,
        bundle_factory=FACTORY,
        batch_size=4,
        image_max_pixels=TEST_MAX_PIXELS,
        image_max_bytes=TEST_MAX_BYTES,
        decode_threads=2,
        **values,  # pydantic validates each by its field
    )


@dataclass
class Corpus:
    jsonl: Path
    good: dict[str, str] = field(default_factory=dict)  # id → colour
    broken: dict[str, str] = field(default_factory=dict)  # id → the stage expected in its dead letter


def _unsupported_mode_tiff() -> bytes:
    """A TIFF whose photometric interpretation (CIE Log2(L)) PIL has no pixel mode for."""
    buffer = io.BytesIO()
    Image.new("RGB", (10, 10), (200, 10, 10)).save(buffer, "TIFF")
    data = bytearray(buffer.getvalue())
    ifd = struct.unpack("<I", data[4:8])[0]
    for i in range(struct.unpack("<H", data[ifd : ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack("<H", data[entry : entry + 2])[0] == 262:
            data[entry + 8 : entry + 10] = struct.pack("<H", 32844)
    return bytes(data)


def write_broken_images(folder: Path, default_limits: bool = False) -> dict[str, tuple[Path, str]]:
    """name → (file, expected stage). Sizes match TEST_MAX_PIXELS / TEST_MAX_BYTES, or with
    `default_limits` the Settings defaults (a bigger bomb, and no file over the 30 MB limit)."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, tuple[Path, str]] = {}
    jpeg = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(jpeg, "JPEG")
    (folder / "truncated.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    files["truncated"] = (folder / "truncated.jpg", "decode")
    (folder / "empty.jpg").write_bytes(b"")
    files["empty"] = (folder / "empty.jpg", "read")
    (folder / "text.jpg").write_text("this is not an image\n")
    files["not-an-image"] = (folder / "text.jpg", "decode")
    side = 8000 if default_limits else 2000  # 64 Mpx (default limit 40 M) or 4 Mpx, in a few kB
    Image.new("1", (side, side)).save(folder / "bomb.png")
    files["bomb"] = (folder / "bomb.png", "decode")
    if not default_limits:
        noise = np.random.default_rng(1).integers(0, 255, (400, 400, 3), dtype=np.uint8)
        Image.fromarray(noise).save(folder / "huge.png")  # ~480 kB of incompressible pixels
        files["too-big"] = (folder / "huge.png", "read")
    (folder / "mode.tif").write_bytes(_unsupported_mode_tiff())
    files["bad-mode"] = (folder / "mode.tif", "decode")
    files["missing"] = (folder / "does-not-exist.jpg", "read")
    return files


def make_corpus(
    folder: Path, n_good: int, with_broken: bool = False, name: str = "posts.jsonl", default_limits: bool = False
) -> Corpus:
    """`n_good` posts with solid colours (cycling through COLOURS, sizes varied so ids differ)."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(jsonl=folder / name)
    lines = []
    colours = sorted(COLOURS)
    for i in range(n_good):
        colour = colours[i % len(colours)]
        post_id = f"p{i:05d}"
        solid_image(images / f"{post_id}.png", colour, size=(40 + i % 17, 30 + i % 13))
        corpus.good[post_id] = colour
        lines.append(
            {
                "id": post_id,
                "image": f"images/{post_id}.png",
                "caption": f"a {colour} picture #{colour}",
                "city": ["London", " Paris ", "tokyo"][i % 3],
                "created_at": "2024-05-01T12:00:00",
            }
        )
    if with_broken:
        for kind, (path, stage) in write_broken_images(folder / "broken", default_limits).items():
            corpus.broken[f"bad-{kind}"] = stage
            lines.append({"id": f"bad-{kind}", "image": str(path), "caption": f"broken {kind}"})
        # Interleave, so broken posts share batches with good ones.
        lines = [lines[i] for i in np.random.default_rng(2).permutation(len(lines))]
    corpus.jsonl.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return corpus
