"""Label transfer from the nearest training pictures: a third vector for the blend.

A picture's neighbour vector is the similarity-weighted mean of the targets of its `k` nearest
training pictures (cosine on the standardised backbone features, weights exp((s − 1)/temperature)),
normalised. Leave-one-source-out chose it as a blend partner of the ridge head and the zero-training
vector (docs/eval-report.md): the linear head averages over every training picture, the neighbours
carry what a few similar pictures were called.

The bank (standardised unit feature rows and their unit targets) travels in the bundle as
`neighbours.npz`, float16 in the shipped one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
            sim = q @ keys.T
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            weights = np.exp((np.take_along_axis(sim, top, axis=1) - 1.0) / self.temperature)
            out[start : start + len(q)] = np.einsum("nk,nkd->nd", weights, targets[top])
        return unit_rows(out)

    def save(self, path: Path, dtype: type = np.float32) -> None:
        np.savez(
            path,
            mean=self.mean.astype(np.float32),
            scale=self.scale.astype(np.float32),
            keys=self.keys.astype(dtype),
            targets=self.targets.astype(dtype),
            k=np.array(self.k),
            temperature=np.array(self.temperature),
        )

    @classmethod
    def load(cls, path: Path) -> NeighbourBank:
        with np.load(path) as data:
            return cls(
                data["mean"].astype(np.float32),
                data["scale"].astype(np.float32),
                data["keys"].astype(np.float32),
                data["targets"].astype(np.float32),
                int(data["k"]),
                float(data["temperature"]),
            )


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
