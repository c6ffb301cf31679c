"""Read and decode one image safely: every way a file can be bad becomes an `ImageRejected` with a reason."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError


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
    max_side: int  # the shorter side is shrunk to this; the encoder does its own final resize


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


def _on_white(image: Image.Image) -> Image.Image:
    """Transparent drawings go on white, as the encoder was trained on them."""
    rgba = image.convert("RGBA")
    canvas = Image.new("RGB", rgba.size, (255, 255, 255))
    canvas.paste(rgba, mask=rgba.getchannel("A"))
    return canvas


def decode(data: bytes, limits: DecodeLimits) -> Image.Image:
    """Bytes → an RGB image whose shorter side is at most `max_side`. Raises ImageRejected."""
    try:
        with warnings.catch_warnings():
            # PIL only warns between MAX_IMAGE_PIXELS and twice that; a bomb is a bomb.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(BytesIO(data))
            width, height = image.size
            if width * height > limits.max_pixels:
                raise ImageRejected("decode", f"{width}x{height} pixels is over image_max_pixels "
                                              f"({limits.max_pixels}): refused as a decompression bomb")
            # JPEG can decode straight at a fraction of the size: much faster for big photos.
            image.draft("RGB", (limits.max_side, limits.max_side))
            image.load()
            image = ImageOps.exif_transpose(image)
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                image = _on_white(image)
            elif image.mode != "RGB":
                image = image.convert("RGB")
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("decode", f"decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise ImageRejected("decode", "not a readable image (unknown format or unsupported pixel mode)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Truncated files, broken headers and modes PIL cannot convert all land here.
        raise ImageRejected("decode", f"broken image: {exc}") from None
    shorter = min(image.size)
    if shorter > limits.max_side:
        scale = limits.max_side / shorter
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.BILINEAR)
    return image


def load_image(path: str | Path, limits: DecodeLimits) -> Image.Image:
    return decode(read_bytes(path, limits.max_bytes), limits)
