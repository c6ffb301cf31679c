"""`ImageEncoder`s: the zero-training baseline, the trained head, and their ensemble.

All three start from one backbone pass (pooled features and ImageNet logits), so evaluation and
training can also feed them cached features through `embed_features`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from jointspace.encoders.backbone import Backbone
from jointspace.encoders.head import ProjectionHead
from jointspace.encoders.imagenet import ClassPrior, class_texts
from jointspace.encoders.knn import NeighbourBank, blend
from jointspace.encoders.vectors import unit_rows
from PIL import Image

from jointspace.protocols import PreparedImage, TextEncoder


def class_prompt_matrix(text: TextEncoder, prior: ClassPrior | None = None) -> np.ndarray:
    """(1000, dim): every ImageNet class as the weighted sum of its texts' embeddings (`class_texts`),
    normalised; the default prior is "a photo of a {class}" alone."""
    per_class = class_texts(prior or ClassPrior())
    unique = list(dict.fromkeys(t for texts in per_class for t, _ in texts))
    batch = getattr(text, "encode", None)
    if callable(batch):  # the sentence model embeds a list in one batched call
        emb = unit_rows(batch(unique))
    else:
        emb = unit_rows(np.stack([text.embed_caption(p) for p in unique]))
    row = {t: i for i, t in enumerate(unique)}
    return unit_rows(np.stack([sum(w * emb[row[t]] for t, w in texts) for texts in per_class]))


def top_classes(logits: np.ndarray, top_k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(classes (N, k), their softmax probabilities (N, k)): each picture's top-k ImageNet classes."""
    logits = np.asarray(logits, np.float32)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    k = min(top_k, probs.shape[1])
    top = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    return top, np.take_along_axis(probs, top, axis=1)


def zeroshot_vectors(logits: np.ndarray, class_matrix: np.ndarray, top_k: int = 10) -> np.ndarray:
    """Probability-weighted mean of the top-k classes' prompt embeddings, normalised."""
    top, weights = top_classes(logits, top_k)
    return unit_rows(np.einsum("nk,nkd->nd", weights, class_matrix[top]))


class BackboneImageEncoder:
    """Shared plumbing: images → backbone → `embed_features`."""

    name: str
    dim: int

    def __init__(self, backbone: Backbone, batch_size: int = 64) -> None:
        self.backbone = backbone
        self.batch_size = batch_size

    def embed_features(self, features: np.ndarray, logits: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def prepare(self, image: Image.Image) -> PreparedImage:
        return self.backbone.prepare(image)

    def embed_images(self, images: Sequence[Image.Image | PreparedImage]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), np.float32)
        feats, logits = self.backbone.run_images(images, self.batch_size)
        return self.embed_features(feats, logits)

    # The `FeatureImageEncoder` steps: workers keep `image_features`' output (the backbone's whole
    # pooled output) beside the index, and `embed_pooled` turns it into vectors (the logits are the
    # classifier's, recomputed).
    @property
    def backbone_spec(self) -> dict[str, object]:
        return self.backbone.spec.to_json()

    @property
    def feature_dim(self) -> int:
        return self.backbone.pooled_dim

    def image_features(self, images: Sequence[Image.Image | PreparedImage]) -> np.ndarray:
        return self.backbone.pooled_images(images, self.batch_size)

    def embed_pooled(self, features: np.ndarray) -> np.ndarray:
        if not len(features):
            return np.zeros((0, self.dim), np.float32)
        return self.embed_features(*self.backbone.split(features))


class ZeroShotImageEncoder(BackboneImageEncoder):
    """No training: an image is what its top ImageNet classes' names mean to the text encoder."""

    def __init__(
        self,
        backbone: Backbone,
        class_matrix: np.ndarray,
        top_k: int = 10,
        name: str = "zeroshot",
        batch_size: int = 64,
    ) -> None:
        super().__init__(backbone, batch_size)
        self.class_matrix = unit_rows(class_matrix)
        self.dim = int(class_matrix.shape[1])
        self.top_k = top_k
        self.name = name

    def embed_features(self, features: np.ndarray, logits: np.ndarray) -> np.ndarray:
        return zeroshot_vectors(logits, self.class_matrix, self.top_k)


def ensemble(head_vectors: np.ndarray, zeroshot: np.ndarray, zeroshot_weight: float) -> np.ndarray:
    """Weighted sum of two unit vectors, normalised (weight 0: the head alone)."""
    if zeroshot_weight <= 0:
        return unit_rows(head_vectors)
    return unit_rows((1.0 - zeroshot_weight) * head_vectors + zeroshot_weight * zeroshot)


def run_head(head: ProjectionHead, features: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    head.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(features), batch_size):
            x = torch.from_numpy(np.asarray(features[start : start + batch_size], np.float32))
            out.append(head(x).numpy())
    return np.concatenate(out) if out else np.zeros((0, head.config.out_dim), np.float32)


class HeadImageEncoder(BackboneImageEncoder):
    """The trained head on backbone features, optionally blended with the zero-training vector and the
    nearest training pictures' targets (`knn.NeighbourBank`)."""

    def __init__(
        self,
        backbone: Backbone,
        head: ProjectionHead,
        zeroshot: ZeroShotImageEncoder | None = None,
        zeroshot_weight: float = 0.0,
        name: str = "head",
        batch_size: int = 64,
        neighbours: NeighbourBank | None = None,
        neighbour_weight: float = 0.0,
    ) -> None:
        super().__init__(backbone, batch_size)
        self.head = head.eval()
        self.zeroshot = zeroshot
        self.zeroshot_weight = zeroshot_weight if zeroshot is not None else 0.0
        self.neighbours = neighbours
        self.neighbour_weight = neighbour_weight if neighbours is not None else 0.0
        self.dim = head.config.out_dim
        self.name = name

    def embed_features(self, features: np.ndarray, logits: np.ndarray) -> np.ndarray:
        vectors = run_head(self.head, features)
        zs = None
        if self.zeroshot is not None and self.zeroshot_weight > 0:
            zs = self.zeroshot.embed_features(features, logits)
        near = None
        if self.neighbours is not None and self.neighbour_weight > 0:
            near = self.neighbours.vectors(features)
        return blend(vectors, zs, self.zeroshot_weight, near, self.neighbour_weight if near is not None else 0.0)
