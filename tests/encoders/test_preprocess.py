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
ONE_LEVEL = 1 / 255 / min(STD)  # one step of an 8-bit pixel, normalised


def picture(width: int, height: int, seed: int = 0) -> Image.Image:
    """Smooth shapes plus noise: resampling differences show, as on photos."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 255, (max(height // 8, 1), max(width // 8, 1), 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR)


@pytest.mark.parametrize(
    "size",
    [
        (640, 480),
        (480, 640),
        (341, 256),
        (224, 224),
        (100, 60),
        (1000, 999),
        (257, 1000),
        (300, 3),
        (3, 300),
        (1280, 720),
    ],
)
def test_preprocess_gives_torchvisions_evaluation_transform(size: tuple[int, int]) -> None:
    reference = T.Compose(
        [
            T.Resize(256, interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(224),
            T.ToTensor(),
            T.Normalize(MEAN, STD),
        ]
    )
    image = picture(*size)
    ours, theirs = Preprocess(224, MEAN, STD)(image), reference(image).numpy()
    assert ours.shape == theirs.shape == (3, 224, 224) and ours.dtype == np.float32
    differ = np.abs(ours - theirs)
    # Resizing only the crop rounds a few pixels the other way: two 8-bit levels at most, rarely.
    assert differ.max() <= 2.01 * ONE_LEVEL and (differ > 1e-4).mean() < 0.005, (differ.max(), (differ > 1e-4).mean())


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
