"""What the head learns to predict for each training image: a vector from the image's text.

- `sentence`: the text encoder's embedding of the whole caption (and hashtags).
- `word`: the mean of the unit embeddings of the image's label words (keywords, title and
  category words), normalised. The trial in RETRIEVAL-NOTES found these generalise better,
  because queries are single words.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import numpy as np
from jointspace.encoders.vectors import unit_rows
from jointspace.encoders.words import STOP_WORDS, caption_words
from tqdm import tqdm

from jointspace.protocols import TextEncoder

TargetKind = Literal["word", "sentence"]


class Labelled(Protocol):
    """What targets need from a training item (the prepared `Item` has these)."""

    @property
    def post(self): ...

    @property
    def keywords(self) -> Sequence[str]: ...

    @property
    def category(self) -> str: ...


def label_words(item: Labelled) -> list[str]:
    """Single lower-case content words from an item's keywords and category path."""
    text = " ".join([*item.keywords, item.category.replace("/", " ").replace("_", " ")])
    return list(dict.fromkeys(caption_words(text)))


def word_target(text: TextEncoder, words: Sequence[str]) -> np.ndarray | None:
    known = [w for w in words if w not in STOP_WORDS and (text.embeds_unseen_words or text.has_word(w))]
    if not known:
        return None
    return unit_rows(text.embed_words(known).mean(axis=0))


def build_targets(text: TextEncoder, items: Sequence[Labelled], kind: TargetKind) -> tuple[np.ndarray, np.ndarray]:
    """(targets (N, dim), usable (N,) bool). An item with no known word falls back to its caption;
    an item whose caption is unknown too is marked unusable (its target row is zero)."""
    out = np.zeros((len(items), text.dim), np.float32)
    ok = np.zeros(len(items), bool)
    pending: list[int] = []
    if kind == "word" and text.embeds_unseen_words:
        # One batched call for every distinct word: the sentence model is far faster in batches.
        words = {w for it in items for w in label_words(it) if w not in STOP_WORDS}
        text.embed_words(sorted(words))
    for i, item in enumerate(tqdm(items, desc=f"{kind} targets", disable=len(items) < 2000)):
        vec = word_target(text, label_words(item)) if kind == "word" else None
        if vec is None:
            pending.append(i)
        else:
            out[i], ok[i] = vec, True
    if pending:
        batch = getattr(text, "embed_captions", None)
        pairs = [(items[i].post.caption, items[i].post.hashtags) for i in pending]
        vecs = batch(pairs) if callable(batch) else np.stack([text.embed_caption(c, h) for c, h in pairs])
        for i, v in zip(pending, vecs, strict=True):
            if np.linalg.norm(v) > 0:
                out[i], ok[i] = unit_rows(v), True
    return out, ok
