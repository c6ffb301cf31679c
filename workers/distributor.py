"""The one seam between producers and the pipeline: batches go to Celery when there is a broker,
else run here, in this process. Producers (the CLI, the stream consumer, `POST /posts`) see the same
`submit_batch → Ticket → BatchOutcome` either way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from jointspace.workers.batch_indexing import BatchOutcome
from jointspace.workers.dead_letters import DeadLetter

from jointspace.records import Post
from jointspace.settings import Settings, get_settings

log = logging.getLogger(__name__)


class Ticket(Protocol):
    posts: list[Post]

    def ready(self) -> bool: ...

    def outcome(self, timeout: float | None = None) -> BatchOutcome:
        """Blocks until the batch is settled. Raises TimeoutError after `timeout` seconds."""
        ...


class Distributor(Protocol):
    def submit_batch(self, posts: Sequence[Post]) -> Ticket:
        """Hands over one batch. May block (backpressure, or the batch itself when in-process)."""
        ...

    def close(self) -> None: ...


@dataclass
class SettledTicket:
    posts: list[Post]
    result: BatchOutcome

    def ready(self) -> bool:
        return True

    def outcome(self, timeout: float | None = None) -> BatchOutcome:
        return self.result


def _dead_batch(posts: Sequence[Post], stage: str, reason: str) -> tuple[BatchOutcome, list[DeadLetter]]:
    letters = [DeadLetter(key=p.id, stage=stage, reason=reason, post=p.to_json()) for p in posts]
    return BatchOutcome(dead={p.id: f"{stage}: {reason}" for p in posts}), letters


@dataclass
class FutureTicket:
    posts: list[Post]
    future: Future[BatchOutcome]

    def ready(self) -> bool:
        return self.future.done()

    def outcome(self, timeout: float | None = None) -> BatchOutcome:
        return self.future.result(timeout=timeout)


class InProcessDistributor:
    """Runs batches in this process, two at a time: one thread reads and decodes the next batch while
    another embeds and writes the current one, so the encoder rarely waits for PIL. Transient backend
    errors are retried with backoff (the policy the Celery task declares); a batch whose backend stays
    away is dead-lettered. `submit_batch` blocks while two batches are already in hand."""

    def __init__(self, settings: Settings, context: Any | None = None) -> None:
        from jointspace.workers.runtime import open_context

        self.settings = settings
        self.context = context or open_context(settings)
        self._owns_context = context is None
        self._prepare = ThreadPoolExecutor(1, thread_name_prefix="prepare")
        self._finish = ThreadPoolExecutor(1, thread_name_prefix="embed")
        # Bounds decoded images held in memory: the batch being embedded and the one being decoded.
        self._slots = threading.BoundedSemaphore(2)

    def submit_batch(self, posts: Sequence[Post]) -> Ticket:
        posts = list(posts)
        self._slots.acquire()
        prepared = self._prepare.submit(self.context.runner.prepare, posts)
        done = self._finish.submit(self._finish_with_retries, posts, prepared)
        done.add_done_callback(lambda _: self._slots.release())
        return FutureTicket(posts, done)

    def _finish_with_retries(self, posts: list[Post], prepared: Future[Any]) -> BatchOutcome:
        from jointspace.workers.tasks import transient_errors

        runner = self.context.runner
        delay = 1.0
        for attempt in range(self.settings.task_max_retries + 1):
            try:
                return runner.finish(prepared.result() if attempt == 0 else runner.prepare(posts))
            except transient_errors() as exc:
                if attempt == self.settings.task_max_retries:
                    outcome, letters = _dead_batch(
                        posts, "write", f"backend unavailable after {attempt} retries: {exc}"
                    )
                    self.context.dead_letters.put(letters)
                    return outcome
                log.warning("backend unavailable (%s); retrying the batch in %.0f s", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, self.settings.retry_backoff_max_s)
            except Exception as exc:  # a bug or a model failure: the batch is kept, the run goes on
                log.exception("batch of %d posts failed", len(posts))
                outcome, letters = _dead_batch(posts, "embed", f"batch failed: {type(exc).__name__}: {exc}")
                self.context.dead_letters.put(letters)
                return outcome
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Waits for the batches in hand."""
        self._prepare.shutdown(wait=True)
        self._finish.shutdown(wait=True)
        if self._owns_context:
            self.context.close()


@dataclass
class CeleryTicket:
    posts: list[Post]
    result: Any  # celery.result.AsyncResult

    def ready(self) -> bool:
        return bool(self.result.ready())

    def outcome(self, timeout: float | None = None) -> BatchOutcome:
        from celery.exceptions import TimeoutError as CeleryTimeout

        try:
            value = self.result.get(timeout=timeout, propagate=False, interval=0.2)
        except CeleryTimeout:
            raise TimeoutError(f"batch {self.result.id} not settled after {timeout} s") from None
        if self.result.successful():
            return BatchOutcome.from_json(value)
        # The task's on_failure has dead-lettered the batch; report it the same way.
        return _dead_batch(self.posts, "embed", f"task failed: {value!r}")[0]


class CeleryDistributor:
    """Enqueues batches as Celery tasks, holding back while the queue holds `queue_max_batches`
    batches so that Redis memory stays bounded however fast the producer reads."""

    def __init__(self, settings: Settings, poll_s: float = 0.2) -> None:
        import redis
        from jointspace.workers.celery_app import make_app

        self.settings = settings
        self.poll_s = poll_s
        # An app of its own, from these settings (the module-level one reads the environment).
        self._app = make_app(settings)
        self._redis = redis.Redis.from_url(settings.broker_url or "")
        self.waited_s = 0.0  # time spent held back, for the summary

    def queue_length(self) -> int:
        """Batches waiting in Redis (kombu keeps one list per priority step beside the plain name)."""
        name = self.settings.celery_queue
        keys = [name] + [f"{name}\x06\x16{p}" for p in range(1, 10)]
        with self._redis.pipeline() as pipe:
            for key in keys:
                pipe.llen(key)
            return sum(pipe.execute())

    def submit_batch(self, posts: Sequence[Post]) -> Ticket:
        started = time.monotonic()
        while self.queue_length() >= self.settings.queue_max_batches:
            time.sleep(self.poll_s)
        self.waited_s += time.monotonic() - started
        payload = {"posts": [p.to_json() for p in posts]}
        result = self._app.send_task("jointspace.ingest_batch", args=[payload], queue=self.settings.celery_queue)
        return CeleryTicket(list(posts), result)

    def close(self) -> None:
        self._redis.close()
        self._app.close()


def open_distributor(settings: Settings, context: Any | None = None) -> Distributor:
    """Celery when `JOINTSPACE_BROKER_URL` is set, else in-process (loads the model here)."""
    if settings.broker_url:
        return CeleryDistributor(settings)
    return InProcessDistributor(settings, context)


@dataclass
class SubmitResult:
    """`accepted`: ids handed to the pipeline (in-process: indexed). `rejected`: id (or `#n`) → reason."""

    accepted: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)


_shared: dict[int, Distributor] = {}
_shared_lock = threading.Lock()


def submit(
    posts: Sequence[Mapping[str, Any] | Post], settings: Settings | None = None, base_dir: Path | None = None
) -> SubmitResult:
    """Validate posts (JSON objects as in the JSONL format, or `Post`s) and hand them to the pipeline.

    For `POST /posts`. Relative image paths resolve against `base_dir`, else the media root.
    Never raises for a bad post: it comes back in `rejected` with its reason. With a broker this
    returns once the batches are queued; without one, once they are indexed.
    """
    from jointspace.ingest.validate import InvalidPost, ValidationLimits, validate_post

    settings = settings or get_settings()
    limits = ValidationLimits.from_settings(settings)
    result = SubmitResult()
    valid: list[Post] = []
    for n, raw in enumerate(posts):
        try:
            valid.append(
                raw
                if isinstance(raw, Post)
                else validate_post(raw, base_dir or settings.media_root, limits, default_source="api")
            )
        except InvalidPost as exc:
            key = str(raw.get("id")) if isinstance(raw, Mapping) and raw.get("id") else f"#{n}"
            result.rejected[key] = exc.describe()
    with _shared_lock:
        distributor = _shared.get(id(settings)) or _shared.setdefault(id(settings), open_distributor(settings))
    for start in range(0, len(valid), settings.batch_size):
        ticket = distributor.submit_batch(valid[start : start + settings.batch_size])
        if isinstance(distributor, InProcessDistributor) or ticket.ready():
            outcome = ticket.outcome()
            result.accepted += outcome.indexed + outcome.unchanged
            result.rejected.update(outcome.dead)
        else:
            result.accepted += [p.id for p in ticket.posts]
    return result
