"""The cached augmentation variants: deterministic per picture, and each the kind of picture it claims."""

from __future__ import annotations

import numpy as np
import pytest
from jointspace.encoders.augment import VARIANTS, apply_variant
from PIL import Image, ImageDraw


def drawing() -> Image.Image:
    """A red filled square on white, the way a prepared drawing sits on its background."""
    image = Image.new("RGB", (96, 96), "white")
    ImageDraw.Draw(image).rectangle((24, 24, 71, 71), fill=(200, 30, 30))
    return image


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_each_variant_is_the_same_for_the_same_picture_in_rgb(name: str) -> None:
    a = np.asarray(apply_variant(name, drawing(), "post-1"))
    b = np.asarray(apply_variant(name, drawing(), "post-1"))
    assert a.ndim == 3 and a.shape[2] == 3
    if name != "crop-colour":  # the only variant that crops
        assert a.shape[:2] == (96, 96)
    assert np.array_equal(a, b)


def test_silhouette_turns_the_drawing_black_and_leaves_the_background_white() -> None:
    out = np.asarray(apply_variant("silhouette", drawing(), "post-1"))
    assert set(np.unique(out)) <= {0, 255}
    assert (out[30:66, 30:66] == 0).all()  # the square's inside
    assert (out[:20] == 255).all() and (out[80:] == 255).all()  # the background


@pytest.mark.parametrize("key", ["post-1", "post-2", "post-3", "post-4", "post-5", "post-6"])
def test_line_art_keeps_only_the_outline(key: str) -> None:
    out = np.asarray(apply_variant("line-art", drawing(), key))[..., 0]
    assert set(np.unique(out)) <= {0, 255}
    assert (out[40:56, 40:56] == 255).all()  # the filled inside is gone
    # Its top and left edges are drawn, whatever the stroke width (1-5 px about the edge).
    assert (out[20:29, 30:66] == 0).any() and (out[30:66, 20:29] == 0).any()
    assert (out[5:15, 5:15] == 255).all()  # the background stays white
