"""The contracts between stages. Implementations live in their stage folders and are found by name."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from jointspace.records import Document, Filters, Hit, UpsertResult


@runtime_checkable
class TextEncoder(Protocol):
    """Words and captions → unit vectors in the joint space's text dimension."""

    name: str
    dim: int
    embeds_unseen_words: bool

    def has_word(self, word: str) -> bool: ...

    def vocabulary(self) -> Sequence[str]: ...

    def embed_words(self, words: Sequence[str]) -> np.ndarray:
        """(len(words), dim) float32, each row unit length. Raises KeyError naming an unknown word."""
        ...

    def embed_caption(self, caption: str, hashtags: Sequence[str] = ()) -> np.ndarray:
        """(dim,) float32 unit vector for a whole caption."""
        ...

    def nearest_words(self, vector: np.ndarray, k: int = 10) -> list[tuple[str, float]]: ...


@runtime_checkable
class ImageEncoder(Protocol):
    """Images → unit vectors in the joint space. Batched; blocks while the model runs."""

    name: str
    dim: int

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(len(images), dim) float32, rows unit length. Images are RGB."""
        ...


@runtime_checkable
class SearchBackend(Protocol):
    """Where documents live and are searched. Elasticsearch and the embedded store behave the same.

    All writes are idempotent by post id. Filters always apply inside the search, so a filtered
    kNN still returns k hits when k documents match.
    """

    dim: int
    model: str

    def upsert(self, docs: Sequence[Document]) -> UpsertResult: ...

    def get(self, post_id: str, with_vector: bool = True) -> Document | None: ...

    def get_many(self, post_ids: Sequence[str], with_vector: bool = True) -> dict[str, Document]: ...

    def delete(self, post_id: str) -> bool: ...

    def knn(self, vector: np.ndarray, k: int, num_candidates: int | None = None,
            filters: Filters | None = None) -> list[Hit]: ...

    def keyword(self, text: str, k: int, filters: Filters | None = None) -> list[Hit]: ...

    def count(self, filters: Filters | None = None) -> int: ...

    def cities(self) -> list[tuple[str, int]]: ...

    def mean_vector(self, filters: Filters | None = None) -> np.ndarray | None: ...

    def iter_documents(self, batch_size: int = 500) -> Iterator[Document]: ...

    def refresh(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class ModelBundle(Protocol):
    """A text encoder and an image encoder that share one space, plus the id an index records.

    `name` is lower-case `[a-z0-9-]`, used in index names (`posts-<name>`); an index made by one
    bundle refuses queries from another.
    """

    name: str
    dim: int
    text: TextEncoder
    image: ImageEncoder
