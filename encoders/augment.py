"""Augmentation variants for feature caching: each image is seen clean and in a few altered copies.

The variants aim at the gap between training drawings and what people search: small icons
(downscaled, blurred) and photo-like colour and framing changes. Each is seeded by the image key,
so a cache rebuilt from scratch holds the same numbers.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

from PIL import Image, ImageFilter
from torchvision import transforms as T

Variant = Callable[[Image.Image, random.Random], Image.Image]


def _clean(image: Image.Image, rng: random.Random) -> Image.Image:
    return image


def _crop_colour(image: Image.Image, rng: random.Random) -> Image.Image:
    """A random 55-100 % crop, a mirror half the time, brightness/contrast/saturation/hue shifts."""
    w, h = image.size
    scale = rng.uniform(0.55, 1.0)
    cw, ch = max(1, int(w * scale)), max(1, int(h * scale))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    image = image.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    b, c, s = (rng.uniform(0.65, 1.35) for _ in range(3))
    hue = rng.uniform(-0.08, 0.08)
    image = T.functional.adjust_brightness(image, b)
    image = T.functional.adjust_contrast(image, c)
    image = T.functional.adjust_saturation(image, s)
    return T.functional.adjust_hue(image, hue)


def _icon_blur(image: Image.Image, rng: random.Random) -> Image.Image:
    """Shrunk to icon size (32-80 px) and blown up again, sometimes blurred or grey."""
    side = rng.randint(32, 80)
    w, h = image.size
    factor = side / max(w, h)
    small = image.resize((max(1, int(w * factor)), max(1, int(h * factor))), Image.Resampling.BILINEAR)
    image = small.resize((w, h), Image.Resampling.BICUBIC)
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0)))
    if rng.random() < 0.2:
        image = image.convert("L").convert("RGB")
    return image


def _line_art(image: Image.Image, rng: random.Random) -> Image.Image:
    """Dark outlines on white, a stroke 1-5 px wide: a drawing as a line icon (tabler-like) draws it."""
    edges = image.convert("L").filter(ImageFilter.FIND_EDGES)
    edges = edges.point(lambda v: 255 if v > 24 else 0)
    width = rng.choice((1, 3, 3, 5))
    if width > 1:
        edges = edges.filter(ImageFilter.MaxFilter(width))
    return Image.eval(edges, lambda v: 255 - v).convert("RGB")


def _silhouette(image: Image.Image, rng: random.Random) -> Image.Image:
    """Every pixel darker than a cut-off (200-245 of 255) black, the rest white: a drawing as a glyph
    icon (mdi-like) fills it. Light colours (an emoji's yellow face) fall on the white side."""
    grey = image.convert("L")
    cut = rng.randint(200, 245)
    return grey.point(lambda v: 255 if v > cut else 0).convert("RGB")


def _flip(image: Image.Image, rng: random.Random) -> Image.Image:
    """The mirror image: with `clean`, the two views of flip test-time augmentation (`TTA_VARIANTS`)."""
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


VARIANTS: dict[str, Variant] = {
    "clean": _clean,
    "crop-colour": _crop_colour,
    "icon-blur": _icon_blur,
    "flip": _flip,
    "line-art": _line_art,
    "silhouette": _silhouette,
}
AUGMENTED = ("crop-colour", "icon-blur")


def apply_variant(name: str, image: Image.Image, key: str) -> Image.Image:
    """`image` altered by the named variant, deterministically for `key`."""
    seed = int.from_bytes(hashlib.sha1(f"{name}:{key}".encode()).digest()[:8], "big")
    return VARIANTS[name](image.convert("RGB"), random.Random(seed))
