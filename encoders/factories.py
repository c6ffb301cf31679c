"""The built-in encoders as entry-point factories (see pyproject.toml), registered like a user's own.

Text encoder factory:  `factory(config: dict, settings: Settings) -> TextEncoder`
Image encoder factory: `factory(config: dict, text: TextEncoder, settings: Settings) -> ImageEncoder`
`config` is the JSON object stored in a bundle's manifest; paths in it are absolute by the time
a factory sees them (the bundle loader resolves them against the bundle folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from jointspace.errors import ConfigurationError
from jointspace.protocols import ImageEncoder, TextEncoder
from jointspace.settings import Settings


def text_cache_dir(settings: Settings) -> Path:
    return settings.cache_dir.expanduser() / "text"


# text encoders
def minilm(config: dict[str, Any], settings: Settings) -> TextEncoder:
    from jointspace.encoders.sentence import MiniLMTextEncoder

    return MiniLMTextEncoder(
        vocab_size=int(config.get("vocab_size", settings.text_vocab_size)),
        cache_dir=text_cache_dir(settings),
        device="cpu",
        runtime=settings.text_runtime,
    )


def glove(config: dict[str, Any], settings: Settings) -> TextEncoder:
    """GloVe 6B 50d from PyPI, or (with config `path`) any GloVe / word2vec file a user brings."""
    from jointspace.encoders.word_vectors import WordVectorEncoder, glove_6b_50d, vectors_from_file

    path = config.get("path")
    if path:
        if not Path(path).is_file():
            raise ConfigurationError(f"word vectors file {path} does not exist")
        return WordVectorEncoder(config.get("name", "glove-file"), vectors_from_file(Path(path)))
    return WordVectorEncoder("glove", glove_6b_50d())


def _gensim_trained(kind: str, config: dict[str, Any]) -> TextEncoder:
    from gensim.models import FastText, Word2Vec
    from jointspace.encoders.word_vectors import WordVectorEncoder

    path = config.get("path")
    if not path or not Path(path).is_file():
        raise ConfigurationError(
            f"{kind} is trained on captions: `jointspace train --text {kind}` "
            f"writes it into a bundle (no model at {path!r})"
        )
    model = (FastText if kind == "fasttext" else Word2Vec).load(str(path))
    idf = config.get("idf")
    return WordVectorEncoder(kind, model.wv, idf=idf, embeds_unseen_words=kind == "fasttext")


def word2vec(config: dict[str, Any], settings: Settings) -> TextEncoder:
    return _gensim_trained("word2vec", config)


def fasttext(config: dict[str, Any], settings: Settings) -> TextEncoder:
    return _gensim_trained("fasttext", config)


# image encoders
def _backbone(config: dict[str, Any], settings: Settings):
    from jointspace.encoders.backbone import Backbone, BackboneSpec

    spec = config.get("backbone") or {}
    return Backbone(
        BackboneSpec(
            name=spec.get("name", settings.backbone),
            weights=spec.get("weights") or (str(settings.backbone_weights) if settings.backbone_weights else None),
            image_size=spec.get("image_size"),
            pool=spec.get("pool") or "avg",  # bundles from before the pool was recorded are average-pooled
        ),
        device=settings.device,
        threads=settings.torch_threads,
    )


def _class_matrix(config: dict[str, Any], text: TextEncoder) -> np.ndarray:
    from jointspace.encoders.image_encoders import class_prompt_matrix
    from jointspace.encoders.imagenet import ClassPrior

    path = config.get("class_matrix")
    if path and Path(path).is_file():
        matrix = np.load(path).astype(np.float32)
        if matrix.shape[1] == text.dim:
            return matrix
    matrix = class_prompt_matrix(text, ClassPrior.from_json(config.get("class_prior")))
    if path:
        try:  # a cache only: a read-only bundle folder still works
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            np.save(path, matrix)
        except OSError:
            pass
    return matrix


def zeroshot(config: dict[str, Any], text: TextEncoder, settings: Settings) -> ImageEncoder:
    from jointspace.encoders.image_encoders import ZeroShotImageEncoder

    return ZeroShotImageEncoder(
        _backbone(config, settings),
        _class_matrix(config, text),
        top_k=int(config.get("top_k", settings.zeroshot_top_k)),
        batch_size=settings.batch_size,
    )


def head(config: dict[str, Any], text: TextEncoder, settings: Settings) -> ImageEncoder:
    import torch
    from jointspace.encoders.head import HeadConfig, ProjectionHead
    from jointspace.encoders.image_encoders import HeadImageEncoder, ZeroShotImageEncoder

    hc = HeadConfig(**config["head"])
    if hc.out_dim != text.dim:
        raise ConfigurationError(f"head outputs {hc.out_dim}-d vectors but text encoder {text.name} is {text.dim}-d")
    module = ProjectionHead(hc)
    module.load_state_dict(torch.load(config["weights"], map_location="cpu", weights_only=True))
    backbone = _backbone(config, settings)
    weight = float(config.get("zeroshot_weight", 0.0))
    zs = None
    if weight > 0:
        zs = ZeroShotImageEncoder(
            backbone, _class_matrix(config, text), top_k=int(config.get("top_k", settings.zeroshot_top_k))
        )
    neighbours, neighbour_weight = None, float(config.get("neighbour_weight", 0.0))
    if config.get("neighbours") and neighbour_weight > 0:
        from jointspace.encoders.knn import NeighbourBank

        neighbours = NeighbourBank.load(Path(config["neighbours"]))
    return HeadImageEncoder(
        backbone,
        module,
        zs,
        weight,
        batch_size=settings.batch_size,
        neighbours=neighbours,
        neighbour_weight=neighbour_weight,
    )


# a pretrained CLIP-style model (`jointspace model import open-clip`): both sides share one model
def _open_clip(config: dict[str, Any], settings: Settings):
    from jointspace.encoders.open_clip_encoders import shared_model

    if not config.get("arch") or not config.get("weights"):
        raise ConfigurationError(
            "an open-clip bundle's config needs `arch` and `weights` (`jointspace model import open-clip` writes both)"
        )
    import torch

    device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return shared_model(str(config["arch"]), Path(config["weights"]), device=device, threads=settings.torch_threads)


def open_clip_text(config: dict[str, Any], settings: Settings) -> TextEncoder:
    from jointspace.encoders.open_clip_encoders import OpenClipTextEncoder, read_vocab_matrix, read_words

    clip = _open_clip(config, settings)
    words = read_words(config.get("vocabulary"))
    return OpenClipTextEncoder(clip, words, read_vocab_matrix(config.get("vocab_matrix"), words, clip.dim))


def open_clip_image(config: dict[str, Any], text: TextEncoder, settings: Settings) -> ImageEncoder:
    from jointspace.encoders.open_clip_encoders import OpenClipImageEncoder

    return OpenClipImageEncoder(_open_clip(config, settings), batch_size=settings.batch_size)
