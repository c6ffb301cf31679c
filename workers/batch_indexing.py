"""One batch of posts through read → decode → embed → write, each stage timed.

Shaped like clip-retrieval's reader/mapper/writer/runner: the stages are small functions over
typed batches, `BatchRunner` composes and times them, and both distributors (in-process and
Celery) call the same runner, so there is one code path. A bad post leaves its batch through
the dead letters; transient backend errors propagate so the caller can retry the whole batch,
which is safe because every write is keyed by post id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from jointspace.workers import metrics
from jointspace.workers.dead_letters import DeadLetter, DeadLetterStore
from PIL import Image

from jointspace.errors import BackendUnavailableError, ConfigurationError, DimensionError, ModelMismatchError
from jointspace.images import DecodeLimits, ImageRejected, load_image
from jointspace.protocols import (
    FeatureImageEncoder,
    ImageEncoder,
    PreparedImage,
    PreparingImageEncoder,
    SearchBackend,
    TakedownRegister,
)
from jointspace.records import Document, Post

# Per-item bulk failures that mean "not now" rather than "never": the whole batch is retried.
TRANSIENT_ITEM_ERRORS = (
    "unavailable_shards_exception",
    "es_rejected_execution_exception",
    "no_shard_available_action_exception",
    "node_not_connected_exception",
    "node_closed_exception",
    "circuit_breaking_exception",
)
TRANSIENT_STATUS = {429, 502, 503, 504}
log = logging.getLogger(__name__)


@contextmanager
def _transient_as_unavailable() -> Iterator[None]:
    """A backend answering 429/5xx (a node starting, shards recovering) is as good as away: retry.

    Duck-typed on `status_code` so the pipeline need not import any backend's client.
    """
    try:
        yield
    except BackendUnavailableError:
        raise
    except Exception as exc:
        if getattr(exc, "status_code", None) in TRANSIENT_STATUS:
            raise BackendUnavailableError(f"the search backend is not ready: {exc}") from exc
        raise


class BatchListener(Protocol):
    """Told about every batch the runner writes (the alert check, `jointspace.alerts`). Each method
    must be idempotent: a batch may be run again after a worker died anywhere in it."""

    def will_write(self, post_ids: Sequence[str]) -> None:
        """Before the write: these posts' check is owed from now on."""
        ...

    def owed(self, post_ids: Sequence[str]) -> set[str]:
        """Of these already-indexed posts, those written by an earlier run whose check never finished."""
        ...

    def written(self, docs: Sequence[Document], redelivered: bool = False) -> Any:
        """After the write: these documents are indexed (vectors included); settles what was owed."""
        ...

    def forget(self, post_ids: Sequence[str]) -> None:
        """Takes back what `written` recorded for these posts (taken down while it ran)."""
        ...


class FeatureKeeper(Protocol):
    """Where a batch's image features are kept beside the index (backends/kept_features.py)."""

    def put(self, post_ids: Sequence[str], features: np.ndarray) -> int: ...

    def forget(self, post_ids: Sequence[str]) -> int: ...


@dataclass(slots=True)
class BatchOutcome:
    """What became of each post of a batch: every id lands in exactly one of the four."""

    indexed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # already indexed with the same content
    dead: dict[str, str] = field(default_factory=dict)  # id → "stage: reason"
    seconds: dict[str, float] = field(default_factory=dict)  # stage → seconds
    withheld: list[str] = field(default_factory=list)  # taken down (TakedownRegister): not written

    def to_json(self) -> dict[str, Any]:
        return {
            "indexed": self.indexed,
            "unchanged": self.unchanged,
            "dead": self.dead,
            "seconds": self.seconds,
            "withheld": self.withheld,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchOutcome:
        return cls(
            list(data.get("indexed", [])),
            list(data.get("unchanged", [])),
            dict(data.get("dead", {})),
            dict(data.get("seconds", {})),
            list(data.get("withheld", [])),
        )

    def settled_ids(self) -> list[str]:
        return [*self.indexed, *self.unchanged, *self.dead, *self.withheld]

    @classmethod
    def merged(cls, parts: Sequence[BatchOutcome]) -> BatchOutcome:
        whole = cls()
        for part in parts:
            whole.indexed += part.indexed
            whole.unchanged += part.unchanged
            whole.dead.update(part.dead)
            whole.withheld += part.withheld
            for stage, seconds in part.seconds.items():
                whole.seconds[stage] = whole.seconds.get(stage, 0.0) + seconds
        return whole


@dataclass(slots=True)
class _Batch:
    """The batch as it moves through the stages; posts drop out into `dead` as they fail."""

    posts: list[Post]
    pending: list[Future[PreparedImage | Image.Image | ImageRejected]] = field(default_factory=list)  # one a post
    vectors: np.ndarray | None = None
    features: np.ndarray | None = None  # the backbone's pooled output per post, when kept
    outcome: BatchOutcome = field(default_factory=BatchOutcome)
    letters: list[DeadLetter] = field(default_factory=list)
    started: float = 0.0
    written: list[Document] = field(default_factory=list)  # for the listener
    owed: list[str] = field(default_factory=list)  # unchanged posts whose listener check is still owed
    stage: str = "read"  # the stage running now: the one to blame when the batch fails

    def reject(self, post: Post, stage: str, reason: str) -> None:
        self.outcome.dead[post.id] = f"{stage}: {reason}"
        self.letters.append(DeadLetter(key=post.id, stage=stage, reason=reason, post=post.to_json()))
        metrics.POSTS_FAILED.labels(stage).inc()


class BatchRunner:
    """Runs one batch through the stages. Thread-safe only per call: give each worker process its own."""

    def __init__(
        self,
        encoder: ImageEncoder,
        model: str,
        backend: SearchBackend,
        dead_letters: DeadLetterStore,
        decode_limits: DecodeLimits,
        executor: Executor,
        listener: BatchListener | None = None,
        kept: FeatureKeeper | None = None,
        embed_chunk: int = 32,
        takedowns: TakedownRegister | None = None,
    ) -> None:
        """`kept`: where each written post's image features go (only for an encoder that splits
        into backbone and head, a `FeatureImageEncoder`). `embed_chunk`: pictures the network
        takes at once while the decode threads prepare the rest of the batch. `takedowns`: posts
        recorded there are never written (checked before the work and again after the write)."""
        self.encoder = encoder
        self.kept = kept if kept is not None and isinstance(encoder, FeatureImageEncoder) else None
        self.model = model
        self.backend = backend
        self.dead_letters = dead_letters
        self.decode_limits = decode_limits
        self.executor = executor
        self.listener = listener
        self.embed_chunk = max(1, embed_chunk)
        self.takedowns = takedowns
        self._prepare = encoder.prepare if isinstance(encoder, PreparingImageEncoder) else None

    def run(self, posts: Sequence[Post], skip_unchanged: bool = True) -> BatchOutcome:
        """Blocks until the batch is indexed or dead-lettered. Raises on transient backend errors."""
        return self.finish_or_split(posts, self.prepare(posts, skip_unchanged), skip_unchanged)

    def finish_or_split(self, posts: Sequence[Post], batch: _Batch, skip_unchanged: bool = True) -> BatchOutcome:
        """`finish(batch)` (`batch` prepared from `posts`). When it fails for a reason that is not
        transient (a bug, a post the model or the backend cannot take), its halves run again on
        their own, down to single posts, so that one bad post goes to the dead letters instead of
        its whole batch. Transient errors, and a Celery time limit, still propagate to the caller."""
        from celery.exceptions import SoftTimeLimitExceeded
        from jointspace.workers.transient import transient_errors

        try:
            return self.finish(batch)
        # The index's own state (another model, another dimension, a misconfiguration) fails every
        # post alike: splitting would only embed each batch six times over before failing it.
        except (*transient_errors(), SoftTimeLimitExceeded, ConfigurationError, ModelMismatchError, DimensionError):
            raise
        except Exception as exc:
            if len(posts) == 1:
                log.exception("post %s failed in the %s stage", posts[0].id, batch.stage)
                alone = _Batch(posts=list(posts))
                alone.reject(posts[0], batch.stage, f"failed: {type(exc).__name__}: {exc}")
                self.dead_letters.put(alone.letters)
                return alone.outcome
            log.warning(
                "a batch of %d posts failed (%s: %s); running its halves apart", len(posts), type(exc).__name__, exc
            )
        halves = (posts[: len(posts) // 2], posts[len(posts) // 2 :])
        return BatchOutcome.merged(
            [self.finish_or_split(h, self.prepare(h, skip_unchanged), skip_unchanged) for h in halves]
        )

    def run_from_features(self, posts: Sequence[Post], features: np.ndarray) -> BatchOutcome:
        """Embeds posts from their kept backbone features (the head alone: no picture is read or
        decoded) and writes them; the encoder must be a `FeatureImageEncoder` of the backbone that
        made the features. Raises on transient backend errors, as `run`."""
        if not isinstance(self.encoder, FeatureImageEncoder):
            raise TypeError(f"image encoder {self.encoder.name!r} cannot embed kept features")
        batch = _Batch(posts=list(posts), started=time.perf_counter())
        with self._stage(batch, "embed"):
            vectors = np.asarray(self.encoder.embed_pooled(features), dtype=np.float32)
            self._accept(batch, vectors, None)  # already kept: nothing to keep again
        with self._stage(batch, "write"):
            self._write(batch)
        self._observe(batch)
        return batch.outcome

    def prepare(self, posts: Sequence[Post], skip_unchanged: bool = True) -> _Batch:
        """The read stage, then the batch's pictures queued on the decode threads (not waited for)."""
        batch = _Batch(posts=_unique(posts), started=time.perf_counter())
        with self._stage(batch, "read"):
            self._withhold(batch)
            if skip_unchanged:
                self._drop_unchanged(batch)
        batch.pending = [self.executor.submit(self._decoded, post) for post in batch.posts]
        return batch

    def finish(self, batch: _Batch) -> BatchOutcome:
        """Decode (the wait for pictures), embed and write stages."""
        self._embed(batch)
        with self._stage(batch, "write"):
            self._write(batch)
        if self.listener is not None and (batch.written or batch.owed):
            with self._stage(batch, "alerts"):
                self._tell_listener(batch)
                if batch.written:
                    self._undo_late_takedowns(batch, checked=True)
        self._observe(batch)
        return batch.outcome

    @contextmanager
    def _stage(self, batch: _Batch, name: str) -> Iterator[None]:
        """Adds the time inside to the batch's `name` stage (a stage may be entered once a chunk)."""
        started = time.perf_counter()
        batch.stage = name
        yield
        batch.outcome.seconds[name] = batch.outcome.seconds.get(name, 0.0) + time.perf_counter() - started

    @staticmethod
    def _observe(batch: _Batch) -> None:
        for name, seconds in batch.outcome.seconds.items():
            metrics.STAGE_SECONDS.labels(name).observe(seconds)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - batch.started)

    def _withhold(self, batch: _Batch) -> None:
        """Leaves out the posts taken down, before any work is spent on them."""
        if self.takedowns is None or not batch.posts:
            return
        with _transient_as_unavailable():
            down = self.takedowns.among([p.id for p in batch.posts])
        if down:
            batch.outcome.withheld += [p.id for p in batch.posts if p.id in down]
            batch.posts = [p for p in batch.posts if p.id not in down]

    def _undo_late_takedowns(self, batch: _Batch, checked: bool = False) -> None:
        """A takedown that came while this batch was embedding (or, `checked`, while the listener
        checked it): its post is written by now, and the takedown's own removals may have run
        before the write (or before the listener recorded its matches). The takedown records before
        it removes anything, so looking again afterwards closes the gap: whichever runs last
        removes the post."""
        if self.takedowns is None or not batch.outcome.indexed:
            return
        with _transient_as_unavailable():
            late = self.takedowns.among(batch.outcome.indexed)
            for post_id in late:
                self.backend.delete(post_id)
        if not late:
            return
        if self.kept is not None:
            self.kept.forget(sorted(late))
        if checked and self.listener is not None:
            self.listener.forget(sorted(late))
        batch.outcome.indexed = [pid for pid in batch.outcome.indexed if pid not in late]
        batch.outcome.withheld += sorted(late)
        batch.written = [d for d in batch.written if d.id not in late]

    def _drop_unchanged(self, batch: _Batch) -> None:
        # Re-delivered batches and re-sent posts cost one lookup instead of a forward pass.
        with _transient_as_unavailable():
            stored = self.backend.get_many([p.id for p in batch.posts], with_vector=False)
        keep = []
        for post in batch.posts:
            doc = stored.get(post.id)
            if doc is not None and doc.model == self.model and doc.post == post:
                batch.outcome.unchanged.append(post.id)
            else:
                keep.append(post)
        metrics.POSTS_UNCHANGED.inc(len(batch.outcome.unchanged))
        batch.posts = keep
        if self.listener is not None and batch.outcome.unchanged:
            batch.owed = sorted(self.listener.owed(batch.outcome.unchanged))

    def _decoded(self, post: Post) -> PreparedImage | Image.Image | ImageRejected:
        try:
            image = load_image(post.image, self.decode_limits)
        except ImageRejected as exc:
            return exc
        # The encoder's own resize and normalisation here, in the decode threads: in the embed
        # stage it would run on one core between network runs (a third of the bare encoder's
        # time on EfficientNet-Lite0, bench/ingest.py). An encoder without it gets the picture.
        return self._prepare(image) if self._prepare is not None else image

    def _embed(self, batch: _Batch) -> None:
        """The network on `embed_chunk` pictures at a time, as they come out of the decode threads:
        they prepare the next chunk while it runs, so decoding overlaps with embedding within one
        batch too (a Celery task is one batch, with nothing to overlap with otherwise)."""
        try:
            keep, parts = self._embed_chunks(batch)
        except BaseException:
            for future in batch.pending:  # nobody will use the pictures still queued
                future.cancel()
            raise
        kept = self.kept is not None
        batch.posts, batch.pending = keep, []  # the pixels are freed before the write
        with self._stage(batch, "embed"):
            if not keep:
                self._accept(batch, np.zeros((0, self.encoder.dim), np.float32), None)
            elif kept:
                encoder: FeatureImageEncoder = self.encoder  # type: ignore[assignment]  # kept implies one
                features = np.concatenate(parts)
                self._accept(batch, np.asarray(encoder.embed_pooled(features), dtype=np.float32), features)
            else:
                self._accept(batch, np.concatenate(parts), None)

    def _embed_chunks(self, batch: _Batch) -> tuple[list[Post], list[np.ndarray]]:
        """The posts whose pictures decoded, and the network's output for them, chunk by chunk."""
        kept = self.kept is not None
        keep: list[Post] = []
        parts: list[np.ndarray] = []
        for start in range(0, len(batch.posts), self.embed_chunk):
            chunk = []
            with self._stage(batch, "decode"):
                for post, future in zip(
                    batch.posts[start : start + self.embed_chunk],
                    batch.pending[start : start + self.embed_chunk],
                    strict=True,
                ):
                    result = future.result()
                    if isinstance(result, ImageRejected):
                        batch.reject(post, result.stage, result.reason)
                    else:
                        keep.append(post)
                        chunk.append(result)
            if chunk:
                with self._stage(batch, "embed"):
                    # Backbone and head as two calls when features are kept: the same vectors.
                    run = self.encoder.image_features if kept else self.encoder.embed_images  # type: ignore[attr-defined]
                    parts.append(np.asarray(run(chunk), dtype=np.float32))
        return keep, parts

    def _accept(self, batch: _Batch, vectors: np.ndarray, features: np.ndarray | None) -> None:
        """Checks the encoder's output and keeps the posts whose vector is usable."""
        if vectors.shape != (len(batch.posts), self.encoder.dim):
            raise ValueError(
                f"image encoder returned shape {vectors.shape} for {len(batch.posts)} images "
                f"of dimension {self.encoder.dim}"
            )
        norms = np.linalg.norm(vectors, axis=1)
        good = np.isfinite(vectors).all(axis=1) & (norms > 0)
        keep = []
        for post, ok in zip(batch.posts, good, strict=True):
            if ok:
                keep.append(post)
            else:
                batch.reject(post, "embed", "the encoder returned a zero or non-finite vector")
        batch.posts = keep
        if features is not None:
            batch.features = features[good]
        # Unit rows are the contract; normalising again costs nothing and absorbs float16 drift (AMP).
        batch.vectors = vectors[good] / norms[good, None]

    def _write(self, batch: _Batch) -> None:
        if batch.posts:
            assert batch.vectors is not None
            docs = [
                Document(post=p, vector=v, model=self.model) for p, v in zip(batch.posts, batch.vectors, strict=True)
            ]
            self._keep(batch)
            if self.listener is not None:
                self.listener.will_write([d.id for d in docs])
            with _transient_as_unavailable():
                result = self.backend.upsert(docs)
            transient = [r for r in result.errors.values() if r.startswith(TRANSIENT_ITEM_ERRORS)]
            if transient:
                # Rewriting the items that did succeed is harmless (same ids), losing the others is not.
                raise BackendUnavailableError(f"{len(transient)} of {len(docs)} writes refused for now: {transient[0]}")
            by_id = {p.id: p for p in batch.posts}
            for post_id, reason in result.errors.items():
                batch.reject(by_id[post_id], "write", reason)
            refused = set(result.errors)
            batch.outcome.indexed.extend(p.id for p in batch.posts if p.id not in refused)
            batch.written = [d for d in docs if d.id not in refused]
            self._undo_late_takedowns(batch)
            metrics.POSTS_INGESTED.inc(len(batch.outcome.indexed))
        self.dead_letters.put(batch.letters)
        # A post indexed now may have been dead-lettered by an earlier attempt: one place per post.
        self.dead_letters.remove(batch.outcome.indexed)

    def _keep(self, batch: _Batch) -> None:
        """Before the index write: a batch run again after a kill (its posts not yet indexed, so not
        skipped as unchanged) replaces these rows by post id. A post the write then refuses keeps
        orphan features, which training and reindex ignore (they start from the index)."""
        if self.kept is None or batch.features is None or not batch.posts:
            return
        try:
            self.kept.put([p.id for p in batch.posts], batch.features)
        except Exception:
            # Keeping serves later training; indexing goes on without it (a reindex decodes these again).
            log.exception("keeping the image features of %d posts failed; they are indexed without", len(batch.posts))

    def _tell_listener(self, batch: _Batch) -> None:
        """Transient failures (Redis or the backend away) propagate, so the batch is retried and the
        check runs then; any other failure of the check is logged and leaves the posts indexed."""
        from jointspace.workers.transient import transient_errors

        assert self.listener is not None
        try:
            if batch.written:
                self.listener.written(batch.written)
            if batch.owed:
                # Written by a run that died before its check: their vectors come from the index.
                with _transient_as_unavailable():
                    stored = self.backend.get_many(batch.owed, with_vector=True)
                self.listener.written([d for d in stored.values() if d.vector.size], redelivered=True)
        except transient_errors():
            raise
        except Exception:
            log.exception(
                "the alert check of a batch of %d posts failed; the posts stay indexed",
                len(batch.written) + len(batch.owed),
            )


def _unique(posts: Sequence[Post]) -> list[Post]:
    """The last version of each id, in first-seen order (one post twice is one document)."""
    latest: dict[str, Post] = {}
    for post in posts:
        latest[post.id] = post
    return list(latest.values())
