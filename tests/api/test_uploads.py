"""A query photo is decoded exactly as an ingested picture: the one image path of `jointspace.images`."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi import HTTPException, UploadFile
from jointspace.api.uploads import read_upload_image
from PIL import Image

from jointspace.images import DecodeLimits, load_image
from jointspace.settings import Settings


def sideways_photo(path: Path) -> Path:
    """A 1200x900 JPEG whose EXIF says "turn 90° clockwise", larger than decode_max_side."""
    pixels = np.random.default_rng(1).integers(0, 255, (900, 1200, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    image.save(path, "JPEG", quality=90, exif=exif)
    return path


def transparent_drawing(path: Path) -> Path:
    """An RGBA PNG, half transparent, larger than decode_max_side."""
    image = Image.new("RGBA", (800, 600), (0, 0, 0, 0))
    image.paste((200, 30, 30, 255), (100, 100, 500, 400))
    image.save(path, "PNG")
    return path


@pytest.mark.parametrize("make", [sideways_photo, transparent_drawing])
def test_upload_decodes_like_ingestion(tmp_path: Path, make) -> None:
    settings = Settings(home=tmp_path)  # the defaults a user gets
    path = make(tmp_path / "picture")
    upload = UploadFile(io.BytesIO(path.read_bytes()), filename="picture")
    uploaded = read_upload_image(upload, settings)
    ingested = load_image(path, DecodeLimits.from_settings(settings))
    assert uploaded.mode == ingested.mode == "RGB"
    assert uploaded.size == ingested.size
    with Image.open(path) as original:
        assert settings.decode_min_side <= min(uploaded.size) <= settings.decode_max_side < min(original.size)
    assert np.array_equal(np.asarray(uploaded), np.asarray(ingested))


def test_upload_orientation_and_white_background(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    photo = read_upload_image(
        UploadFile(io.BytesIO(sideways_photo(tmp_path / "p").read_bytes()), filename="p"), settings
    )
    assert photo.height > photo.width  # stood up by its EXIF orientation
    drawing = read_upload_image(
        UploadFile(io.BytesIO(transparent_drawing(tmp_path / "d").read_bytes()), filename="d"), settings
    )
    assert drawing.getpixel((0, 0)) == (255, 255, 255)


def test_truncated_upload_is_a_clear_400(tmp_path: Path) -> None:
    data = transparent_drawing(tmp_path / "d").read_bytes()[:200]
    with pytest.raises(HTTPException) as caught:
        read_upload_image(UploadFile(io.BytesIO(data), filename="d.png"), Settings(home=tmp_path))
    assert caught.value.status_code == 400 and "d.png" in str(caught.value.detail)
