"""A pretrained CLIP-style model (PyPI `open-clip-torch`) as the joint space: its text tower is the
text encoder, its image tower the image encoder, loaded from a local checkpoint only.

Nothing is downloaded: the model is built with `pretrained=None` from open_clip's bundled config,
then the checkpoint's tensors are loaded into it (open_clip's own `load_checkpoint`, which knows
its checkpoint layouts: a state dict, a training checkpoint's `state_dict`, `module.` prefixes,
safetensors). Architectures whose tokenizer or text tower come from the Hugging Face hub are used
only if those files are already in the local HF cache (`HF_HUB_OFFLINE=1`).

Both encoders of a bundle share one loaded model (`shared_model`), so a bundle holds it once.
"""

from __future__ import annotations

import difflib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from jointspace.encoders.hf_offline import hf_offline
from jointspace.encoders.vectors import embed_words_cached, nearest_rows, unit_rows
from jointspace.encoders.words import WordSegmenter, caption_text
from PIL import Image

from jointspace.errors import ConfigurationError
from jointspace.protocols import PreparedImage

NAME = "open-clip"
log = logging.getLogger(__name__)


def known_archs() -> list[str]:
    hf_offline()  # before open_clip (and through it huggingface_hub / transformers) is imported
    import open_clip

    return list(open_clip.list_models())


def check_arch(arch: str) -> dict[str, Any]:
    """The arch's open_clip config; ConfigurationError naming close matches for an unknown one."""
    archs = known_archs()
    if arch not in archs:
        close = difflib.get_close_matches(arch, archs, n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigurationError(
            f"open_clip has no architecture {arch!r}{hint} "
            f"(`python -c \"import open_clip; print(open_clip.list_models())\"` lists all {len(archs)})"
        )
    import open_clip

    return open_clip.get_model_config(arch) or {}


@dataclass
class LoadedClip:
    """An open_clip model with its evaluation transform and tokenizer, in eval mode."""

    arch: str
    model: Any  # open_clip.CLIP / CustomTextCLIP
    preprocess: Any  # PIL image → tensor (open_clip's validation transform for the arch)
    tokenizer: Any
    device: str
    dim: int
    lock: threading.Lock


def load_clip(arch: str, checkpoint: Path, device: str = "cpu", threads: int | None = None) -> LoadedClip:
    """Build `arch` without pretrained weights and load `checkpoint` into it (strict). Clear
    ConfigurationErrors for a missing file, an unknown arch, a file that is not a checkpoint, and
    a checkpoint whose tensors do not fit the arch."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise ConfigurationError(f"checkpoint {checkpoint} does not exist (weights are read from a local file only)")
    check_arch(arch)
    import open_clip
    import torch

    if threads and device == "cpu":
        torch.set_num_threads(threads)
    try:  # the tokenizer first: cheap, and the step that would need the hub for SigLIP / HF-text archs
        tokenizer = open_clip.get_tokenizer(arch)
        # open_clip warns "initialized randomly" for pretrained=None: untrue here, the checkpoint follows.
        logging.disable(logging.WARNING)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None, device="cpu")
        finally:
            logging.disable(logging.NOTSET)
    except OSError as exc:  # an HF-hub text tower or tokenizer that is not in the local cache
        raise ConfigurationError(
            f"open_clip architecture {arch!r} needs Hugging Face files that are not on this "
            f"machine, and nothing is downloaded at run time ({exc}); choose an arch with "
            f"open_clip's built-in tokenizer (ViT-*, RN*, convnext_*)"
        ) from exc
    try:
        open_clip.load_checkpoint(model, str(checkpoint), strict=True)
    except Exception as exc:  # classified below: unreadable file, or tensors that do not fit
        raise _checkpoint_error(arch, checkpoint, exc) from exc
    model = model.to(device).eval()
    with torch.inference_mode():
        dim = int(model.encode_text(tokenizer(["photo"]).to(device)).shape[-1])
    return LoadedClip(arch, model, preprocess, tokenizer, device, dim, threading.Lock())


def _checkpoint_error(arch: str, checkpoint: Path, exc: Exception) -> ConfigurationError:
    """A file torch cannot read at all (its errors are of many kinds: UnpicklingError, an archive
    error, a safetensors header error) versus a readable checkpoint whose tensors do not fit."""
    from open_clip.factory import load_state_dict

    try:
        tensors = load_state_dict(str(checkpoint))
        readable = isinstance(tensors, dict) and bool(tensors)
    except Exception:
        readable = False
    if not readable:
        return ConfigurationError(
            f"{checkpoint} is not a readable open_clip/PyTorch checkpoint ({type(exc).__name__}: {str(exc)[:300]})"
        )
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()][:4]
    return ConfigurationError(
        f"checkpoint {checkpoint} does not fit open_clip architecture {arch!r} "
        f"({type(exc).__name__}: {' '.join(lines)[:600]}); check --arch against the "
        f"checkpoint's model card"
    )


_SHARED: dict[tuple[str, str, str], LoadedClip] = {}
_SHARED_LOCK = threading.Lock()


def shared_model(arch: str, checkpoint: Path, device: str = "cpu", threads: int | None = None) -> LoadedClip:
    """One loaded model per (arch, checkpoint file, device) for the process: the bundle's text and
    image encoders share it."""
    key = (arch, str(Path(checkpoint).resolve()), device)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = load_clip(arch, checkpoint, device, threads)
        return _SHARED[key]


class OpenClipTextEncoder:
    """A `TextEncoder` over the CLIP text tower. Embeds any word (byte-pair tokens); `vocabulary`
    and `nearest_words` use the bundle's word list, whose embeddings the import stored."""

    name = NAME
    embeds_unseen_words = True

    def __init__(
        self, clip: LoadedClip, words: Sequence[str], vocab_matrix: np.ndarray | None = None, batch_size: int = 256
    ) -> None:
        self.clip = clip
        self.dim = clip.dim
        self.batch_size = batch_size
        self._vocab = list(words)
        self._index = {w: i for i, w in enumerate(self._vocab)}
        self._matrix = None if vocab_matrix is None else unit_rows(vocab_matrix)
        self._cache: dict[str, np.ndarray] = {}
        self.segmenter = WordSegmenter(self._index.get)

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Unit float32 rows for arbitrary texts, batched (the tokenizer truncates at the arch's context)."""
        import torch
        from tqdm import tqdm

        if not texts:
            return np.zeros((0, self.dim), np.float32)
        out: list[np.ndarray] = []
        starts = range(0, len(texts), self.batch_size)
        with self.clip.lock, torch.inference_mode():
            for start in tqdm(starts, desc="embedding words", unit="batch", disable=not progress):
                tokens = self.clip.tokenizer(list(texts[start : start + self.batch_size])).to(self.clip.device)
                out.append(self.clip.model.encode_text(tokens).float().cpu().numpy())
        return unit_rows(np.concatenate(out))

    def has_word(self, word: str) -> bool:
        return word.lower() in self._index

    def vocabulary(self) -> Sequence[str]:
        return self._vocab

    def vocabulary_prepared(self) -> bool:
        return self._matrix is not None

    def vocab_matrix(self) -> np.ndarray:
        if self._matrix is None:  # a bundle written without it: embed once, in memory
            log.warning("embedding the nearest-word vocabulary with the CLIP text tower: %d words", len(self._vocab))
            self._matrix = self.encode(self._vocab, progress=len(self._vocab) > 2000)
        return self._matrix

    def embed_words(self, words: Sequence[str]) -> np.ndarray:
        return embed_words_cached(words, self._cache, self.encode, self.dim)

    def embed_caption(self, caption: str, hashtags: Sequence[str] = ()) -> np.ndarray:
        text = caption_text(caption, hashtags, self.segmenter)
        return self.encode([text])[0] if text else np.zeros(self.dim, np.float32)

    def embed_captions(self, captions: Sequence[tuple[str, Sequence[str]]], progress: bool = False) -> np.ndarray:
        return self.encode([caption_text(c, h, self.segmenter) for c, h in captions], progress=progress)

    def nearest_words(self, vector: np.ndarray, k: int = 10) -> list[tuple[str, float]]:
        return [(self._vocab[i], sim) for i, sim in nearest_rows(self.vocab_matrix(), vector, k)]


class OpenClipImageEncoder:
    """An `ImageEncoder` over the CLIP image tower, with the arch's own evaluation transform."""

    name = NAME

    def __init__(self, clip: LoadedClip, batch_size: int = 64) -> None:
        self.clip = clip
        self.dim = clip.dim
        self.batch_size = batch_size

    def prepare(self, image: Image.Image) -> PreparedImage:
        return self.clip.preprocess(image.convert("RGB")).numpy()

    def embed_images(self, images: Sequence[Image.Image | PreparedImage]) -> np.ndarray:
        import torch

        if not images:
            return np.zeros((0, self.dim), np.float32)
        out: list[np.ndarray] = []
        cuda = self.clip.device.startswith("cuda")
        with self.clip.lock, torch.inference_mode(), torch.autocast("cuda", enabled=cuda):
            for start in range(0, len(images), self.batch_size):
                chunk = images[start : start + self.batch_size]
                prepared = [im if isinstance(im, np.ndarray) else self.prepare(im) for im in chunk]
                batch = torch.from_numpy(np.stack(prepared)).to(self.clip.device)
                out.append(self.clip.model.encode_image(batch).float().cpu().numpy())
        return unit_rows(np.concatenate(out))


def read_words(path: str | None) -> list[str]:
    if not path or not Path(path).is_file():
        return []
    return [w for w in Path(path).read_text(encoding="utf-8").split("\n") if w]


def read_vocab_matrix(path: str | None, words: Sequence[str], dim: int) -> np.ndarray | None:
    if not path or not Path(path).is_file():
        return None
    matrix = np.load(path).astype(np.float32)
    if matrix.shape != (len(words), dim):
        raise ConfigurationError(
            f"{path} holds a {matrix.shape} matrix, expected ({len(words)}, {dim}) "
            "for the bundle's word list; import the checkpoint again"
        )
    return matrix
