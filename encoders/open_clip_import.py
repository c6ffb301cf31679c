"""`jointspace model import open-clip`: a bundle from a pretrained CLIP-style checkpoint.

The bundle holds a copy of the checkpoint (a hard link where the file system allows), the word
list for nearest words and explanations with its embeddings by the CLIP text tower (computed here,
once, so no query pays for it), and a manifest that records where it came from: the arch, the
checkpoint's file name, size and SHA-256, the open_clip version and the dimension.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from jointspace.encoders.bundle import _NAME, MANIFEST, probe_vectors, read_manifest, write_manifest
from PIL import Image

from jointspace.errors import ConfigurationError
from jointspace.settings import Settings

WORDS_FILE = "vocab.txt"
MATRIX_FILE = "vocab.npy"


@dataclass(frozen=True, slots=True)
class ImportedBundle:
    name: str
    folder: Path
    dim: int
    arch: str
    sha256: str
    vocabulary: int

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "folder": str(self.folder),
            "dim": self.dim,
            "arch": self.arch,
            "checkpoint_sha256": self.sha256,
            "vocabulary": self.vocabulary,
        }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_name(arch: str, sha256: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", arch.lower()).strip("-")
    return f"open-clip-{slug}-{sha256[:8]}"


def _place_checkpoint(source: Path, dest: Path) -> None:
    """A hard link when source and bundle share a file system (no second copy of a large file), else a copy."""
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def import_open_clip(
    settings: Settings,
    arch: str,
    checkpoint: Path,
    name: str | None = None,
    vocab_size: int | None = None,
    progress: bool = True,
) -> ImportedBundle:
    """Check the checkpoint against the arch, then write the bundle under `settings.models_dir`.

    Written into a staging folder and renamed into place, so a failed import leaves nothing behind."""
    from jointspace.encoders.open_clip_encoders import NAME, OpenClipImageEncoder, OpenClipTextEncoder, load_clip
    from jointspace.encoders.sentence import common_words

    checkpoint = Path(checkpoint).expanduser()
    if not checkpoint.is_file():
        raise ConfigurationError(f"checkpoint {checkpoint} does not exist (weights are read from a local file only)")
    sha = file_sha256(checkpoint)
    name = name or default_name(arch, sha)
    if not _NAME.match(name):
        raise ConfigurationError(f"bundle name {name!r} must be lower-case letters, digits and '-'")
    folder = settings.models_dir / name
    if (folder / MANIFEST).is_file():
        existing = read_manifest(folder).get("source") or {}
        same = existing.get("checkpoint_sha256") == sha and existing.get("arch") == arch
        raise ConfigurationError(
            f"a bundle named {name!r} already exists at {folder}"
            + (" (the same arch and checkpoint: nothing to do)" if same else "; choose another --name")
        )

    import torch

    device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
    clip = load_clip(arch, checkpoint, device=device, threads=settings.torch_threads)  # the errors a user can fix
    words = common_words(int(vocab_size or settings.text_vocab_size))
    text = OpenClipTextEncoder(clip, words)
    matrix = text.encode(words, progress=progress)
    image = OpenClipImageEncoder(clip)
    image_dim = image.embed_images([Image.new("RGB", (32, 32), "grey")]).shape[1]
    if image_dim != clip.dim:
        raise ConfigurationError(f"{arch}: the image tower gives {image_dim}-d vectors, the text tower {clip.dim}-d")

    staging = settings.models_dir / f".{name}.importing-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        weights = f"checkpoint{''.join(checkpoint.suffixes[-1:]) or '.pt'}"
        _place_checkpoint(checkpoint, staging / weights)
        (staging / WORDS_FILE).write_text("\n".join(words), encoding="utf-8")
        np.save(staging / MATRIX_FILE, matrix.astype(np.float16))  # half the disk; plenty for cosine ranking
        import open_clip

        config = {"arch": arch, "weights": weights, "vocabulary": WORDS_FILE, "vocab_matrix": MATRIX_FILE}
        write_manifest(
            staging,
            {
                "name": name,
                "dim": clip.dim,
                "text": {"name": NAME, "config": config, "dim": clip.dim, "probe": probe_vectors(text)},
                "image": {"name": NAME, "config": config},
                "source": {
                    "kind": "open-clip",
                    "arch": arch,
                    "checkpoint": str(checkpoint.resolve()),
                    "checkpoint_bytes": checkpoint.stat().st_size,
                    "checkpoint_sha256": sha,
                    "open_clip_version": open_clip.__version__,
                    "embed_dim": clip.dim,
                    "vocabulary_words": len(words),
                },
                "loss": None,
                "targets": None,
                "training": None,
                "metrics": {},
            },
        )
        staging.replace(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ImportedBundle(name, folder, clip.dim, arch, sha, len(words))
