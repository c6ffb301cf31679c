"""Label transfer from the nearest training pictures: a third vector for the blend.

A picture's neighbour vector is the similarity-weighted mean of the targets of its `k` nearest
training pictures (cosine on the standardised backbone features, weights exp((s − 1)/temperature)),
normalised. Leave-one-source-out chose it as a blend partner of the ridge head and the zero-training
vector (docs/eval-report.md): the linear head averages over every training picture, the neighbours
carry what a few similar pictures were called.

The bank (standardised unit feature rows and their unit targets) travels in the bundle as
`neighbours.npz`. The shipped one is `compressed()`: the keys projected on their leading principal
directions (`projection`, so a query is projected the same way) and both keys and targets stored as
int8 rows with a scale each, so a bank of every prepared picture stays small enough for git.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from jointspace.encoders.vectors import unit_rows


@dataclass
class NeighbourBank:
    mean: np.ndarray  # (F,) feature mean over the training pictures
    scale: np.ndarray  # (F,) feature standard deviation (+1e-3, as the ridge head's standardisation)
    keys: np.ndarray  # (N, F) unit rows of the standardised training features
    targets: np.ndarray  # (N, D) unit training targets
    k: int = 30
    temperature: float = 0.1
    # (F, D): keys live in the span of these directions (`compressed`); a query is projected on them too.
    projection: np.ndarray | None = None

    @classmethod
    def fit(cls, features: np.ndarray, targets: np.ndarray, k: int = 30, temperature: float = 0.1) -> NeighbourBank:
        x = np.asarray(features, np.float64)
        mean = x.mean(0)
        scale = x.std(0) + 1e-3
        keys = unit_rows(((x - mean) / scale).astype(np.float32))
        return cls(
            mean.astype(np.float32),
            scale.astype(np.float32),
            keys,
            unit_rows(np.asarray(targets, np.float32)),
            k,
            temperature,
        )

    def vectors(self, features: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """(n, D) unit neighbour vectors of the pictures' backbone features."""
        feats = np.asarray(features, np.float32)
        out = np.zeros((len(feats), self.targets.shape[1]), np.float32)
        keys = np.asarray(self.keys, np.float32)
        targets = np.asarray(self.targets, np.float32)
        k = min(self.k, len(keys))
        for start in range(0, len(feats), batch_size):
            q = unit_rows((feats[start : start + batch_size] - self.mean) / self.scale)
            if self.projection is not None:
                q = unit_rows(q @ self.projection)
            sim = q @ keys.T
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            weights = np.exp((np.take_along_axis(sim, top, axis=1) - 1.0) / self.temperature)
            out[start : start + len(q)] = np.einsum("nk,nkd->nd", weights, targets[top])
        return unit_rows(out)

    def compressed(self, dims: int = 256) -> NeighbourBank:
        """This bank with its keys projected on the `dims` leading principal directions of the keys
        (cosine is then measured in that span; a query is projected the same way); `dims` 0 or at
        least the key width: this bank unprojected. With `save(..., np.int8)` 256 dims took the keys
        of 23,555 average-pooled pictures from 60 MB (float16) to 6 MB at no cost on unseen sources,
        but GeM keys lose 0.016 P@10 on 256 dims and 0.005 on 768 (docs/eval-report.md): the shipped
        bank of GeM keys is int8 rows unprojected."""
        keys = np.asarray(self.keys, np.float32)
        if dims <= 0 or dims >= keys.shape[1]:
            return self
        _, _, vt = np.linalg.svd(keys.astype(np.float64), full_matrices=False)
        projection = vt[:dims].T.astype(np.float32)  # (F, dims)
        return NeighbourBank(
            self.mean, self.scale, unit_rows(keys @ projection), self.targets, self.k, self.temperature, projection
        )

    def save(self, path: Path, dtype: type = np.float32) -> None:
        """float32 or float16 rows, or (np.int8) rows of int8 with a float32 scale each."""
        arrays: dict[str, np.ndarray] = {
            "mean": self.mean.astype(np.float32),
            "scale": self.scale.astype(np.float32),
            "k": np.array(self.k),
            "temperature": np.array(self.temperature),
        }
        for name, m in (("keys", self.keys), ("targets", self.targets)):
            if dtype == np.int8:
                arrays[name], arrays[f"{name}_scale"] = quantise_rows(m)
            else:
                arrays[name] = np.asarray(m).astype(dtype)
        if self.projection is not None:
            # float16 where the rows are compressed (half a megabyte less per 128 dims)
            arrays["projection"] = self.projection.astype(np.float16 if dtype in (np.int8, np.float16) else np.float32)
        save: Any = np.savez  # its `**arrays` would be checked against allow_pickle
        save(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> NeighbourBank:
        with np.load(path) as data:

            def rows(name: str) -> np.ndarray:
                m = data[name].astype(np.float32)
                return m * data[f"{name}_scale"][:, None] if f"{name}_scale" in data.files else m

            return cls(
                data["mean"].astype(np.float32),
                data["scale"].astype(np.float32),
                rows("keys"),
                rows("targets"),
                int(data["k"]),
                float(data["temperature"]),
                data["projection"].astype(np.float32) if "projection" in data.files else None,
            )


def quantise_rows(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 rows, float32 scale per row) with row ≈ int8 · scale (the largest |value| maps to 127)."""
    m = np.asarray(m, np.float32)
    scale = np.abs(m).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    return np.clip(np.rint(m / scale[:, None]), -127, 127).astype(np.int8), scale.astype(np.float32)


def blend(
    head: np.ndarray,
    zeroshot: np.ndarray | None,
    zeroshot_weight: float,
    neighbours: np.ndarray | None = None,
    neighbour_weight: float = 0.0,
) -> np.ndarray:
    """(1 − z − n)·head + z·zero-training + n·neighbours, normalised (each input a unit vector)."""
    out = (1.0 - zeroshot_weight - neighbour_weight) * head
    if zeroshot is not None and zeroshot_weight > 0:
        out = out + zeroshot_weight * zeroshot
    if neighbours is not None and neighbour_weight > 0:
        out = out + neighbour_weight * neighbours
    return unit_rows(out)
