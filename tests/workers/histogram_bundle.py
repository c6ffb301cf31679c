"""A real, tiny image encoder with known geometry, for ingestion tests that must not wait on a CNN.

An image's vector is its per-channel colour histogram (`bins` bins a channel), L2-normalised: a
pure red picture and another pure red picture are identical (dot 1), red and blue share only
their empty bins' positions (dot 1/3). Loaded by workers through JOINTSPACE_BUNDLE_FACTORY=
`FACTORY` (with `IMPORT_ROOT`, the repository, on PYTHONPATH). A folder in JOINTSPACE_MODEL
holding `histogram.json` ({"name": ..., "bins": ...}) selects another variant (for reindex).
`JOINTSPACE_TEST_EMBED_DELAY_S` slows each batch, so a test can kill a worker in the middle of one.
`JOINTSPACE_TEST_SPLIT_ENCODER=1` makes the encoder a `FeatureImageEncoder` (the histogram is the
"backbone" output, the head normalises it), so workers keep its features beside the index.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

# A user's own bundle factory, found by name as a worker process finds it: the folder that holds
# `tests` goes on the child's PYTHONPATH (the test process itself imports `tests` from there).
FACTORY = "tests.workers.histogram_bundle:make_bundle"
IMPORT_ROOT = str(Path(__file__).resolve().parents[2])

COLOURS = {
    "red": (220, 20, 20),
    "green": (20, 200, 40),
    "blue": (20, 40, 220),
    "yellow": (240, 220, 30),
    "black": (5, 5, 5),
    "white": (250, 250, 250),
}


class HistogramImageEncoder:
    def __init__(self, name: str, bins: int) -> None:
        self.name = name
        self.bins = bins
        self.dim = 3 * bins
        self.delay_s = float(os.environ.get("JOINTSPACE_TEST_EMBED_DELAY_S", "0"))

    def prepare(self, image: Image.Image) -> np.ndarray:
        return np.asarray(image.convert("RGB").resize((32, 32)), dtype=np.int64)

    def embed_one(self, image: Image.Image | np.ndarray) -> np.ndarray:
        pixels = image if isinstance(image, np.ndarray) else self.prepare(image)
        index = pixels * self.bins // 256
        counts = np.concatenate([np.bincount(index[..., c].ravel(), minlength=self.bins) for c in range(3)])
        vector = counts.astype(np.float32)
        return vector / np.linalg.norm(vector)

    def embed_images(self, images: Sequence[Image.Image | np.ndarray]) -> np.ndarray:
        if self.delay_s:
            time.sleep(self.delay_s)
        return np.stack([self.embed_one(i) for i in images]) if images else np.zeros((0, self.dim), np.float32)


class ColourWordEncoder:
    """Colour names → the histogram of a plain picture of that colour (the same space as the images)."""

    embeds_unseen_words = False

    def __init__(self, image: HistogramImageEncoder) -> None:
        self.name, self.dim, self._image = image.name, image.dim, image

    def has_word(self, word: str) -> bool:
        return word in COLOURS

    def vocabulary(self) -> Sequence[str]:
        return sorted(COLOURS)

    def embed_words(self, words: Sequence[str]) -> np.ndarray:
        for word in words:
            if word not in COLOURS:
                raise KeyError(word)
        return np.stack([self._image.embed_one(Image.new("RGB", (8, 8), COLOURS[w])) for w in words])

    def embed_caption(self, caption: str, hashtags: Sequence[str] = ()) -> np.ndarray:
        words = [w for w in caption.lower().split() + list(hashtags) if w in COLOURS] or ["white"]
        vector = self.embed_words(words).sum(axis=0)
        return vector / np.linalg.norm(vector)

    def nearest_words(self, vector: np.ndarray, k: int = 10) -> list[tuple[str, float]]:
        words = self.vocabulary()
        scores = self.embed_words(words) @ vector
        return sorted(zip(words, scores.tolist(), strict=True), key=lambda p: -p[1])[:k]


class SplitHistogramImageEncoder(HistogramImageEncoder):
    """The histogram in two steps: raw bin counts (the features workers keep), then unit length."""

    @property
    def backbone_spec(self) -> dict[str, object]:
        return {"name": "histogram", "bins": self.bins}

    @property
    def feature_dim(self) -> int:
        return self.dim

    def image_features(self, images: Sequence[Image.Image | np.ndarray]) -> np.ndarray:
        vectors = self.embed_images(images)  # the delay included
        return vectors * 100.0  # not unit length: the head's normalisation is visible

    def embed_pooled(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, np.float32).reshape(-1, self.dim)
        return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


@dataclass
class HistogramBundle:
    name: str
    dim: int
    text: ColourWordEncoder
    image: HistogramImageEncoder


def make_bundle(settings: object = None) -> HistogramBundle:
    name, bins = "histogram-test", 8
    folder = getattr(settings, "model", None)
    if folder is not None and (folder / "histogram.json").is_file():
        spec = json.loads((folder / "histogram.json").read_text())
        name, bins = spec["name"], int(spec["bins"])
    split = os.environ.get("JOINTSPACE_TEST_SPLIT_ENCODER") == "1"
    time.sleep(float(os.environ.get("JOINTSPACE_TEST_LOAD_DELAY_S", "0")))  # a model that loads slowly
    image = (SplitHistogramImageEncoder if split else HistogramImageEncoder)(name, bins)
    return HistogramBundle(name=name, dim=image.dim, text=ColourWordEncoder(image), image=image)


def solid_image(path: os.PathLike[str] | str, colour: str, size: tuple[int, int] = (64, 48)) -> None:
    Image.new("RGB", size, COLOURS[colour]).save(path)
