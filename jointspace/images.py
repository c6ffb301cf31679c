"""The one image path: reading, decoding, EXIF orientation, transparency on white and shrinking.

Ingestion (workers) and photo uploads (`POST /search`) both `decode()` here, so a query photo
reaches the encoder exactly as the same picture did when it was indexed; thumbnails
(`api/media.py`) and data preparation (`datasets/raster.py`) use the same pieces (data preparation
turns pictures by its source's `rotate_cw`, not by EXIF, as the prepared data always has). Every
way a file can be bad becomes an `ImageRejected` with a reason. The encoder's own final resize and
normalisation stay with the encoder (`encoders/backbone.py`): they belong to the model, not to the file.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from jointspace.settings import Settings

WHITE = (255, 255, 255)


class ImageRejected(Exception):
    """An image that cannot be embedded. `stage` is `read` (the file) or `decode` (its content)."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(f"{stage}: {reason}")
        self.stage = stage
        self.reason = reason


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    max_bytes: int
    max_pixels: int
    max_side: int  # a larger shorter side is shrunk to this; the encoder does its own final resize
    min_side: int  # JPEG DCT scaling keeps the shorter side at least this

    @classmethod
    def from_settings(cls, settings: Settings) -> DecodeLimits:
        return cls(
            max_bytes=settings.image_max_bytes,
            max_pixels=settings.image_max_pixels,
            max_side=settings.decode_max_side,
            min_side=settings.decode_min_side,
        )


def read_bytes(path: str | Path, max_bytes: int) -> bytes:
    try:
        size = os.stat(path).st_size
        if size == 0:
            raise ImageRejected("read", "empty file (0 bytes)")
        if size > max_bytes:
            raise ImageRejected("read", f"file of {size} bytes is larger than image_max_bytes ({max_bytes})")
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise ImageRejected("read", f"file not found: {path}") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise ImageRejected("read", f"cannot read {path}: {exc.strerror}") from None


def has_transparency(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def on_white(image: Image.Image) -> Image.Image:
    """An RGB copy with any transparency composited over white, as the encoder was trained on
    drawings (RGBA, LA, PA and palette images with a transparent colour alike)."""
    if not has_transparency(image):
        return image if image.mode == "RGB" else image.convert("RGB")
    rgba = image.convert("RGBA")
    canvas = Image.new("RGB", rgba.size, WHITE)
    canvas.paste(rgba, mask=rgba.getchannel("A"))
    return canvas


def upright(image: Image.Image) -> Image.Image:
    """Turned as its EXIF orientation says (a phone photo taken sideways stands up)."""
    return ImageOps.exif_transpose(image)


def shrink_shorter_side(image: Image.Image, max_side: int) -> Image.Image:
    """The shorter side at most `max_side` (never enlarged)."""
    shorter = min(image.size)
    if shorter <= max_side:
        return image
    scale = max_side / shorter
    return image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BILINEAR
    )


def shrink_longer_side(image: Image.Image, max_side: int) -> Image.Image:
    """A thumbnail: the longer side at most `max_side` (never enlarged), aspect ratio kept."""
    image = image.copy()  # thumbnail() works in place; the caller's image stays as it was
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image


def fit_longer_side(image: Image.Image, size: int) -> Image.Image:
    """Scaled so that the longer side is `size` (up or down), aspect ratio kept (prepared data)."""
    width, height = image.size
    scale = size / max(width, height)
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    if target == image.size:
        return image
    return image.resize(target, Image.Resampling.LANCZOS)


def decode(data: bytes, limits: DecodeLimits) -> Image.Image:
    """Bytes → an upright RGB image whose shorter side is at most `max_side` and, for a JPEG that
    was at least that large, at least `min_side`. Raises ImageRejected."""
    try:
        with warnings.catch_warnings():
            # PIL only warns between MAX_IMAGE_PIXELS and twice that; a bomb is a bomb.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(BytesIO(data))
            width, height = image.size
            if width * height > limits.max_pixels:
                raise ImageRejected(
                    "decode",
                    f"{width}x{height} pixels is over image_max_pixels "
                    f"({limits.max_pixels}): refused as a decompression bomb",
                )
            # JPEG decodes straight at 1/2, 1/4 or 1/8 of its size in the DCT domain: much cheaper
            # than a full decode and a resample, and a good low-pass filter. PIL picks the largest
            # factor that keeps both sides at least the size asked for.
            image.draft("RGB", (limits.min_side, limits.min_side))
            image.load()
            image = on_white(upright(image))
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("decode", f"decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise ImageRejected("decode", "not a readable image (unknown format or unsupported pixel mode)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Truncated files, broken headers and modes PIL cannot convert all land here.
        raise ImageRejected("decode", f"broken image: {exc}") from None
    return shrink_shorter_side(image, limits.max_side)


def load_image(path: str | Path, limits: DecodeLimits) -> Image.Image:
    return decode(read_bytes(path, limits.max_bytes), limits)
