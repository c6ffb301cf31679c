"""An on-disk cache of backbone outputs (pooled features and ImageNet logits) per image and variant.

Extraction is the slow part of training and evaluation (tens of images a second on two cores), so
each image is run once per variant and kept. Entries are keyed by path, size and mtime, so a
re-prepared image is recomputed and a new source only costs its own images.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from jointspace.encoders.augment import apply_variant
from jointspace.encoders.backbone import Backbone, BackboneSpec
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from jointspace.atomic_write import atomic_path


def image_key(path: str | Path) -> str:
    p = Path(str(path).removeprefix("file://"))
    st = p.stat()
    return f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"


@dataclass
class CachedOutputs:
    features: np.ndarray  # (N, F) float32
    logits: np.ndarray  # (N, 1000) float32


class PictureDataset(Dataset):
    """Pictures decoded (and redrawn as `variant`) for a DataLoader's workers, one tensor each."""

    def __init__(self, paths: Sequence[str], keys: Sequence[str], variant: str, transform) -> None:
        self.paths, self.keys, self.variant, self.transform = paths, keys, variant, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        with Image.open(self.paths[i].removeprefix("file://")) as im:
            image = apply_variant(self.variant, im.convert("RGB"), self.keys[i])
        return self.transform(image)


class FeatureCache:
    """`get(paths, variant)` → cached outputs in the order of `paths`, computing only what is missing."""

    def __init__(
        self,
        root: Path,
        spec: BackboneSpec,
        backbone_factory=None,
        batch_size: int = 64,
        loader_workers: int = 1,
    ) -> None:
        ident = json.dumps(spec.to_json(), sort_keys=True)
        self.root = Path(root) / f"{spec.name}-{hashlib.sha1(ident.encode()).hexdigest()[:8]}"
        self.spec = spec
        self._factory = backbone_factory or (lambda: Backbone(spec))
        self._backbone: Backbone | None = None
        self.batch_size = batch_size
        self.loader_workers = loader_workers

    @property
    def backbone(self) -> Backbone:
        if self._backbone is None:
            self._backbone = self._factory()
        return self._backbone

    @contextlib.contextmanager
    def _locked(self, variant: str) -> Iterator[Path]:
        """Serialise writers (a training run and an evaluation may extract at the same time)."""
        folder = self.root / variant
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield folder
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _load(self, variant: str) -> tuple[list[str], np.ndarray | None, np.ndarray | None]:
        """One consistent snapshot: keys and arrays live in one file replaced atomically."""
        file = self.root / variant / "cache.npz"
        if not file.exists():
            return [], None, None
        with np.load(file) as data:
            return [str(k) for k in data["keys"]], data["features"], data["logits"]

    def _append(self, variant: str, keys: list[str], feats: np.ndarray, logits: np.ndarray) -> None:
        """Merge new rows into the file under the lock, keeping what other processes added meanwhile."""
        with self._locked(variant) as folder:
            old_keys, old_f, old_l = self._load(variant)
            known = set(old_keys)
            keep = [i for i, k in enumerate(keys) if k not in known]
            if not keep:
                return
            all_keys = old_keys + [keys[i] for i in keep]
            f16, l16 = feats[keep].astype(np.float16), logits[keep].astype(np.float16)
            all_f = f16 if old_f is None else np.concatenate([old_f, f16])
            all_l = l16 if old_l is None else np.concatenate([old_l, l16])
            with atomic_path(folder / "cache.npz", suffix=".tmp.npz") as tmp:
                np.savez(tmp, keys=np.array(all_keys), features=all_f, logits=all_l)

    def _extract(self, paths: list[str], keys: list[str], variant: str, desc: str) -> tuple[np.ndarray, np.ndarray]:
        data = PictureDataset(paths, keys, variant, self.backbone.transform)
        workers = self.loader_workers if len(paths) > 4 * self.batch_size else 0
        loader = DataLoader(data, batch_size=self.batch_size, num_workers=workers)
        feats, logits = [], []
        for batch in tqdm(loader, desc=desc, unit="batch", disable=len(paths) < 2 * self.batch_size):
            f, lg = self.backbone.run_tensors(batch)
            feats.append(f)
            logits.append(lg)
        return np.concatenate(feats), np.concatenate(logits)

    def get(self, paths: Sequence[str], variant: str = "clean", chunk: int = 512) -> CachedOutputs:
        keys = [image_key(p) for p in paths]
        key_to_path = dict(zip(keys, paths, strict=True))
        cached_keys, _, _ = self._load(variant)
        known = set(cached_keys)
        todo = [k for k in dict.fromkeys(keys) if k not in known]
        # Extract in chunks and save after each, so an interrupted run keeps what it did.
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            f, lg = self._extract(
                [str(key_to_path[k]) for k in part],
                part,
                variant,
                f"features {variant} {start + len(part)}/{len(todo)}",
            )
            self._append(variant, part, f, lg)
        if not keys:
            return CachedOutputs(np.zeros((0, 0), np.float32), np.zeros((0, 1000), np.float32))
        cached_keys, feats, logits = self._load(variant)
        index = {k: i for i, k in enumerate(cached_keys)}
        rows = np.array([index[k] for k in keys])
        assert feats is not None and logits is not None
        return CachedOutputs(feats[rows].astype(np.float32), logits[rows].astype(np.float32))
