"""The contracts between stages. Implementations live in their stage folders and are found by name."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from jointspace.records import (
    Document,
    FacetCounts,
    Filters,
    Hit,
    IndexRef,
    MatchSet,
    RankedPage,
    TrendBucket,
    UpsertResult,
)

# A picture as an image encoder's model takes it (`ImageEncoder.prepare`); opaque to everyone else.
PreparedImage = np.ndarray


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

    def embed_images(self, images: Sequence[Image.Image | PreparedImage]) -> np.ndarray:
        """(len(images), dim) float32, rows unit length. RGB pictures, or (from an encoder that is
        also a `PreparingImageEncoder`) its own `prepare`'s output."""
        ...


@runtime_checkable
class PreparingImageEncoder(ImageEncoder, Protocol):
    """An image encoder whose per-picture work can run apart from the model (optional: a user's
    encoder without `prepare` gets PIL pictures, as before)."""

    def prepare(self, image: Image.Image) -> PreparedImage:
        """One picture → the model's input (its own resize, crop, normalisation), on the CPU.
        Thread-safe: the batch runner calls it in its decode threads, so that this per-picture work
        overlaps with the model running on other pictures instead of adding to it."""
        ...


@runtime_checkable
class FeatureImageEncoder(ImageEncoder, Protocol):
    """An image encoder in two steps, a backbone then a head, so that the backbone's output can be
    kept beside the index and a head run on it later without decoding the picture again."""

    @property
    def backbone_spec(self) -> dict[str, object]:
        """The backbone's identity (name, weights, input size, pool): equal specs give the same features."""
        ...

    @property
    def feature_dim(self) -> int: ...

    def image_features(self, images: Sequence[Image.Image | PreparedImage]) -> np.ndarray:
        """(len(images), feature_dim) float32: the backbone's pooled output. Blocks while it runs."""
        ...

    def embed_pooled(self, features: np.ndarray) -> np.ndarray:
        """(N, dim) unit rows from `image_features`' output (float16 accepted): no image needed."""
        ...


@runtime_checkable
class MediaRootRegistry(Protocol):
    """Folders whose pictures the API may serve, recorded with the index (both backends implement it).

    Paths are absolute, resolved folder names; adding is idempotent.
    """

    def media_roots(self) -> list[str]: ...

    def add_media_roots(self, paths: Sequence[str]) -> list[str]:
        """Returns the paths that were not recorded before."""
        ...

    def remove_media_root(self, path: str) -> bool: ...


@runtime_checkable
class SearchBackend(MediaRootRegistry, Protocol):
    """Where documents live and are searched. Elasticsearch and the embedded store behave the same.

    Each records the media roots of what it indexed (MediaRootRegistry).

    All writes are idempotent by post id. Filters always apply inside the search, so a filtered
    kNN still returns k hits when k documents match.
    """

    dim: int
    model: str

    def upsert(self, docs: Sequence[Document]) -> UpsertResult: ...

    def get(self, post_id: str, with_vector: bool = True) -> Document | None: ...

    def get_many(self, post_ids: Sequence[str], with_vector: bool = True) -> dict[str, Document]: ...

    def delete(self, post_id: str) -> bool: ...

    def knn(
        self,
        vector: np.ndarray,
        k: int,
        num_candidates: int | None = None,
        filters: Filters | None = None,
        with_vectors: bool = False,
        ranked_top: int | None = None,
    ) -> list[Hit]:
        """With `with_vectors`, each hit carries its stored vector (no second request for them).
        `ranked_top`: the caller reads only the order of about this many best hits, and the rest as
        a pool (hybrid's fusion window); a quantised index may then re-score fewer candidates."""
        ...

    def keyword(self, text: str, k: int, filters: Filters | None = None) -> list[Hit]: ...

    def keyword_among(self, queries: Sequence[tuple[str, Filters | None]], post_ids: Sequence[str]) -> list[list[Hit]]:
        """For each (text, filters): the posts among `post_ids` that the keyword search would find,
        best first. Sees every write made before the call (the alert check of a new batch)."""
        ...

    def count(self, filters: Filters | None = None) -> int: ...

    def cities(self) -> list[tuple[str, int]]: ...

    def mean_vector(self, filters: Filters | None = None) -> np.ndarray | None: ...

    def iter_documents(self, batch_size: int = 500) -> Iterator[Document]: ...

    def facets(self, match: MatchSet, fields: Sequence[str], size: int) -> FacetCounts:
        """Counts per value of each of `fields` (records.FACET_FIELDS) over the match set; at
        most `size` terms per field (months: all, in time order)."""
        ...

    def trends(self, match: MatchSet, by: str, interval: str, size: int) -> list[TrendBucket]:
        """For the `size` values of `by` (records.TREND_KEYS) most frequent in the match set:
        per period (records.TREND_INTERVALS) the posts in the match set and all posts passing the
        match set's filters; every period where the value has a post, ordered by the value's
        count in the match set (ties by value), then by period."""
        ...

    def newest(self, match: MatchSet, k: int, offset: int = 0) -> RankedPage:
        """Posts `offset`..`offset+k` of the match set, newest first (posts without a date last,
        ties by id, so pages never overlap); a hit's score is its similarity."""
        ...

    def refresh(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class TakedownRegister(Protocol):
    """The posts taken down (ingest/takedown.py), kept apart from the index so that a swap, a
    reindex or a restore cannot forget them: a batch never writes a post recorded here, so a
    stream that sends it again, or a batch already queued when it was taken down, leaves it out."""

    def record(self, post_ids: Sequence[str], at: str | None = None) -> None:
        """Idempotent; a post recorded again keeps its first time. `at`: the ISO time to record
        (default now; a restore passes the backup's)."""
        ...

    def lift(self, post_ids: Sequence[str]) -> list[str]:
        """Forgets the posts (they may be indexed again); returns those that were recorded."""
        ...

    def among(self, post_ids: Sequence[str]) -> set[str]:
        """Those of `post_ids` that are recorded; sees every `record` that returned before the call."""
        ...

    def entries(self) -> list[tuple[str, str]]:
        """(post id, ISO time recorded), oldest first."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class IndexLifecycle(Protocol):
    """Staging, swapping, rolling back and dropping the index behind the configured name: the
    backend's own way (Elasticsearch: versioned indices behind the alias; embedded: store folders).
    `workers/reindex.py` speaks only this; backends/lifecycle.py implements it for both."""

    where: str  # the configured name in words, for messages ("alias 'posts'", "the embedded store ...")
    # True: writers follow a swap at once (an alias), so posts written meanwhile are caught up after
    # it. False: writers holding the old index keep writing into it (a folder rename): catch up first.
    catch_up_after_swap: bool

    def live(self) -> IndexRef | None:
        """The index searches and writers use now; None before the first ingest."""
        ...

    def open_index(self, ref: IndexRef) -> SearchBackend:
        """A backend on that one index (live, staged or retired), by its own name. Close it."""
        ...

    def stage(self, model: str, dim: int) -> IndexRef:
        """A new empty index for `model`'s vectors, not live (embedded: a staging folder a dead run
        left is discarded; Elasticsearch: a new versioned index)."""
        ...

    def swap(self, staged: IndexRef) -> IndexRef | None:
        """Makes `staged` (a staged or retired index) live; returns the index it retired (kept,
        under the returned name), or None when nothing was live."""
        ...

    def retired(self) -> list[IndexRef]:
        """Indices a swap (or a restore) retired and that are kept, oldest first."""
        ...

    def drop(self, ref: IndexRef) -> None:
        """Deletes a retired index; refuses the live one."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class ModelBundle(Protocol):
    """A text encoder and an image encoder that share one space, plus the id an index records.

    `name` is lower-case `[a-z0-9-]`, used in index names (`posts-<name>`); an index made by one
    bundle refuses queries from another.
    """

    name: str
    dim: int

    # Read-only: a bundle may load its encoders on first use (encoders/bundle.py's properties).
    @property
    def text(self) -> TextEncoder: ...

    @property
    def image(self) -> ImageEncoder: ...
