"""Decoding and the encoder's preprocessing: the sizes a picture goes through, and the network input
against torchvision's standard evaluation transform (jointspace/images.py, encoders/backbone.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from jointspace.encoders.backbone import Preprocess
from PIL import Image
from torchvision import transforms as T

from jointspace.images import DecodeLimits, decode
from jointspace.settings import Settings

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
ONE_LEVEL_OF = 1 / 255 / np.asarray(STD, np.float32)  # one step of an 8-bit pixel, normalised, per channel


def picture(width: int, height: int, seed: int = 0, noise: bool = False) -> Image.Image:
    """Smooth shapes (as on photos), or pure noise: bicubic overshoot clipped to 8 bits between
    the two resize passes shows most on noise."""
    rng = np.random.default_rng(seed)
    if noise:
        return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    coarse = rng.integers(0, 255, (max(height // 8, 1), max(width // 8, 1), 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR)


SIZES = [
    (640, 480),
    (480, 640),
    (320, 240),
    (240, 320),  # a 480 × 640 portrait JPEG as it now decodes
    (427, 640),
    (341, 256),
    (224, 224),
    (100, 60),
    (1000, 999),
    (257, 1000),
    (250, 2000),
    (300, 3),
    (3, 300),
    (1280, 720),
]


def evaluation_transform(image: Image.Image, horizontal_first: bool = False) -> np.ndarray:
    """torchvision's Resize(256, bicubic) + CenterCrop(224) + ToTensor + Normalize; with
    `horizontal_first`, its resize done as two explicit passes, the horizontal one first."""
    resize = T.Resize(256, interpolation=T.InterpolationMode.BICUBIC)
    if horizontal_first:
        width, height = image.size
        new_w, new_h = (256, int(256 * height / width)) if width <= height else (int(256 * width / height), 256)
        wide = image.resize((new_w, height), Image.Resampling.BICUBIC)
        resize = lambda _: wide.resize((new_w, new_h), Image.Resampling.BICUBIC)  # noqa: E731
    return T.Compose([resize, T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN, STD)])(image).numpy()


def levels_apart(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    """(largest difference, share of values that differ), in 8-bit levels."""
    levels = np.abs(ours - theirs) / ONE_LEVEL_OF[:, None, None]
    return float(levels.max()), float((levels > 0.01).mean())


@pytest.mark.parametrize("noise", [False, True], ids=["smooth", "noise"])
@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_preprocess_gives_the_evaluation_transform(size: tuple[int, int], noise: bool) -> None:
    image = picture(*size, noise=noise)
    ours = Preprocess(224, MEAN, STD)(image)
    assert ours.shape == (3, 224, 224) and ours.dtype == np.float32
    # Resizing only the crop rounds a few values the other way: two 8-bit levels at most, rarely.
    largest, share = levels_apart(ours, evaluation_transform(image, horizontal_first=True))
    assert largest <= 2.01 and share < 0.005, (largest, share)
    # torchvision's own resize is the same two passes, except where Pillow runs a whole-picture
    # resize vertical pass first (seen for 257 × 1000 → 256 × 996): bicubic overshoot clipped to
    # 8 bits between the passes then differs (on noise by up to ~20 levels).
    if size != (257, 1000):
        largest, share = levels_apart(ours, evaluation_transform(image))
        assert largest <= 2.01 and share < 0.005, (largest, share)


def test_preprocess_takes_any_mode() -> None:
    prepare = Preprocess(224, MEAN, STD)
    rgb = picture(300, 200)
    for mode in ("RGBA", "L", "P"):
        assert prepare(rgb.convert(mode)).shape == (3, 224, 224)


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, quality=90) if fmt == "JPEG" else image.save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("size", "fmt", "decoded"),
    [
        ((640, 480), "JPEG", (320, 240)),  # half-size DCT decode: 240 ≥ 224
        ((640, 427), "JPEG", (640, 427)),  # half size would be 213 < 224: full size, resized by the encoder
        ((4000, 3000), "JPEG", (500, 375)),  # 1/8, the smallest DCT scale
        ((6000, 4800), "JPEG", (640, 512)),  # 1/8 is still over decode_max_side: shrunk to it
        ((800, 600), "PNG", (683, 512)),  # no DCT scaling in PNG: shrunk to decode_max_side
        ((300, 200), "PNG", (300, 200)),  # small pictures are never enlarged
    ],
)
def test_decode_sizes_with_the_defaults(size: tuple[int, int], fmt: str, decoded: tuple[int, int]) -> None:
    settings = Settings()
    limits = DecodeLimits.from_settings(settings)
    assert (limits.min_side, limits.max_side) == (settings.decode_min_side, settings.decode_max_side) == (224, 512)
    image = decode(encoded(picture(*size), fmt), limits)
    assert image.size == decoded and image.mode == "RGB"


def test_decode_min_side_cannot_exceed_max_side() -> None:
    with pytest.raises(ValueError, match="decode_min_side"):
        Settings(decode_min_side=600, decode_max_side=512)
