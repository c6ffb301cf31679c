"""Uploaded images: read with bounds on bytes and pixels, and stored under the home folder by content hash."""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path

from fastapi import HTTPException, UploadFile
from jointspace.api.media import SAFE_MIME
from PIL import Image

from jointspace.atomic_write import write_bytes_atomic
from jointspace.images import DecodeLimits, ImageRejected, decode
from jointspace.media_roots import uploads_dir
from jointspace.settings import Settings

log = logging.getLogger(__name__)

_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp"}


class BadImage(ValueError):
    """An upload that is not an image we take (names why)."""


def read_bounded(upload: UploadFile, max_bytes: int) -> bytes:
    data = upload.file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise HTTPException(
            413, f"image {upload.filename!r} larger than {max_bytes} bytes (JOINTSPACE_IMAGE_MAX_BYTES)"
        )
    return data


def check_image(data: bytes, settings: Settings, name: str | None) -> str:
    """The image's format (JPEG, PNG, ...). Raises BadImage for non-images and pixel bombs."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > settings.image_max_pixels:
                raise BadImage(
                    f"{name!r}: {img.width}x{img.height} is more than "
                    f"{settings.image_max_pixels} pixels (JOINTSPACE_IMAGE_MAX_PIXELS)"
                )
            fmt = img.format
            img.verify()
    except BadImage:
        raise
    except Exception as exc:  # PIL raises many types for broken files
        # Pillow's class (UnidentifiedImageError...) is for the log; the person gets what to send.
        log.info("upload %r refused: %s: %s", name, exc.__class__.__name__, exc)
        raise BadImage(f"{name!r} is not a readable image: send a JPEG, PNG, WebP, GIF or BMP picture") from None
    if fmt not in SAFE_MIME:
        raise BadImage(f"{name!r}: {fmt} images are not accepted; use JPEG, PNG, WebP, GIF or BMP")
    return fmt


def read_upload_image(upload: UploadFile, settings: Settings) -> Image.Image:
    """The upload decoded exactly as an ingested picture is (`jointspace.images.decode`: upright,
    transparent parts on white, at the same decoded size), so a copy of an indexed picture finds
    it. 413 / 400 with the reason."""
    data = read_bounded(upload, settings.image_max_bytes)
    try:
        check_image(data, settings, upload.filename)
        return decode(data, DecodeLimits.from_settings(settings))
    except BadImage as exc:
        raise HTTPException(400, str(exc)) from None
    except ImageRejected as exc:
        raise HTTPException(400, f"{upload.filename!r} is not a readable image ({exc.reason})") from None


def store_upload(data: bytes, fmt: str, settings: Settings) -> Path:
    """Saves image bytes under `$JOINTSPACE_HOME/uploads/` (an allowed media root) named by their
    sha256, so the same photo uploaded twice is one file (and, through the ingest id, one post)."""
    digest = hashlib.sha256(data).hexdigest()
    folder = uploads_dir(settings) / digest[:2]
    target = folder / f"{digest}{_EXTENSIONS[fmt]}"
    if target.exists():
        return target
    write_bytes_atomic(target, data)
    return target
