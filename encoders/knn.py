"""Label transfer from the nearest training pictures: a third vector for the blend.

A picture's neighbour vector is the similarity-weighted mean of the targets of its `k` nearest
training pictures (cosine on the standardised backbone features, weights exp((s − 1)/temperature)),
normalised. Leave-one-source-out chose it as a blend partner of the ridge head and the zero-training
vector (docs/eval-report.md): the linear head averages over every training picture, the neighbours
carry what a few similar pictures were called.

The bank (standardised unit feature rows and their unit targets) travels in the bundle as
`neighbours.npz`. The shipped one stores keys and targets as int8 rows with a scale each, kept int8
in memory too; `compressed()` can also project the keys on their leading principal directions
(`projection`, so a query is projected the same way), which the average-pooled bank took at no cost
and GeM keys do not (docs/eval-report.md).
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
    # Rows loaded as stored by `save(..., np.int8)` stay int8 in memory with a scale per row (row ≈
    # int8 · scale): the shipped bank of 23,556 unprojected GeM keys takes 30 MB instead of 121 MB
    # of float32 in every process that embeds pictures. None: the rows are float.
    key_scale: np.ndarray | None = None
    target_scale: np.ndarray | None = None

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

    def key_rows(self) -> np.ndarray:
        """The keys as float32 rows."""
        return _float_rows(self.keys, self.key_scale)

    def target_rows(self) -> np.ndarray:
        """The targets as float32 rows."""
        return _float_rows(self.targets, self.target_scale)

    def vectors(self, features: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """(n, D) unit neighbour vectors of the pictures' backbone features."""
        feats = np.asarray(features, np.float32)
        out = np.zeros((len(feats), self.targets.shape[1]), np.float32)
        k = min(self.k, len(self.keys))
        for start in range(0, len(feats), batch_size):
            q = unit_rows((feats[start : start + batch_size] - self.mean) / self.scale)
            if self.projection is not None:
                q = unit_rows(q @ self.projection)
            sim = self._similarities(q)
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            weights = np.exp((np.take_along_axis(sim, top, axis=1) - 1.0) / self.temperature)
            targets = self.targets[top].astype(np.float32)  # (n, k, D)
            if self.target_scale is not None:
                targets *= self.target_scale[top][:, :, None]
            out[start : start + len(q)] = np.einsum("nk,nkd->nd", weights, targets)
        return unit_rows(out)

    def _similarities(self, q: np.ndarray) -> np.ndarray:
        """(n, N) cosines of unit queries to every key; int8 keys are widened a slice at a time."""
        if self.key_scale is None:
            return q @ np.asarray(self.keys, np.float32).T
        sim = np.empty((len(q), len(self.keys)), np.float32)
        for start in range(0, len(self.keys), KEY_SLICE):
            part = self.keys[start : start + KEY_SLICE].astype(np.float32)
            sim[:, start : start + len(part)] = q @ part.T
        sim *= self.key_scale
        return sim

    def compressed(self, dims: int = 256) -> NeighbourBank:
        """This bank with its keys projected on the `dims` leading principal directions of the keys
        (cosine is then measured in that span; a query is projected the same way); `dims` 0 or at
        least the key width: this bank unprojected. With `save(..., np.int8)` 256 dims took the keys
        of 23,555 average-pooled pictures from 60 MB (float16) to 6 MB at no cost on unseen sources,
        but GeM keys lose 0.016 P@10 on 256 dims and 0.005 on 768 (docs/eval-report.md): the shipped
        bank of GeM keys is int8 rows unprojected."""
        if dims <= 0 or dims >= self.keys.shape[1]:
            return self
        keys = self.key_rows()
        _, _, vt = np.linalg.svd(keys.astype(np.float64), full_matrices=False)
        projection = vt[:dims].T.astype(np.float32)  # (F, dims)
        return NeighbourBank(
            self.mean,
            self.scale,
            unit_rows(keys @ projection),
            self.target_rows(),
            self.k,
            self.temperature,
            projection,
        )

    def save(self, path: Path, dtype: type = np.float32) -> None:
        """float32 or float16 rows, or (np.int8) rows of int8 with a float32 scale each."""
        arrays: dict[str, np.ndarray] = {
            "mean": self.mean.astype(np.float32),
            "scale": self.scale.astype(np.float32),
            "k": np.array(self.k),
            "temperature": np.array(self.temperature),
        }
        for name, m in (("keys", self.key_rows()), ("targets", self.target_rows())):
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

            def rows(name: str) -> tuple[np.ndarray, np.ndarray | None]:
                if f"{name}_scale" in data.files:  # int8 rows stay int8 (`key_scale`)
                    return data[name].astype(np.int8), data[f"{name}_scale"].astype(np.float32)
                return data[name].astype(np.float32), None

            (keys, key_scale), (targets, target_scale) = rows("keys"), rows("targets")
            return cls(
                data["mean"].astype(np.float32),
                data["scale"].astype(np.float32),
                keys,
                targets,
                int(data["k"]),
                float(data["temperature"]),
                data["projection"].astype(np.float32) if "projection" in data.files else None,
                key_scale,
                target_scale,
            )


# int8 keys widened to float32 this many rows at a time (21 MB for 1,280-d keys).
KEY_SLICE = 4096


def _float_rows(rows: np.ndarray, scale: np.ndarray | None) -> np.ndarray:
    m = np.asarray(rows, np.float32)
    return m if scale is None else m * scale[:, None]


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
