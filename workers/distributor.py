"""The one seam between producers and the pipeline: batches go to Celery when there is a broker,
else run here, in this process. Producers (the CLI, the stream consumer, `POST /posts`) see the same
`submit_batch → Ticket → BatchOutcome` either way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from jointspace.workers.batch_indexing import BatchOutcome
from jointspace.workers.dead_letters import DeadLetter, DeadLetterStore
from jointspace.workers.outage import outage_reason
from jointspace.workers.transient import transient_errors

from jointspace.backoff import backoff_s
from jointspace.broker import broker_errors
from jointspace.protocols import ModelBundle, SearchBackend
from jointspace.records import Post
from jointspace.settings import Settings

log = logging.getLogger(__name__)

STALL_CHECK_S = 10.0  # how often a wait on the workers looks at why it lasts (`stall_reason`)
StallNotice = Callable[[str | None], None]  # told the stall seen at each look (None: none)


class Ticket(Protocol):
    posts: list[Post]

    def ready(self) -> bool: ...

    def outcome(self, timeout: float | None = None) -> BatchOutcome:
        """Blocks until the batch is settled. Raises TimeoutError after `timeout` seconds."""
        ...


class Distributor(Protocol):
    in_process: bool  # True: a ticket settles here (indexed or dead); False: queued for the workers

    def submit_batch(self, posts: Sequence[Post], on_stall: StallNotice | None = None) -> Ticket:
        """Hands over one batch. May block (backpressure, or the batch itself when in-process);
        while it waits on the workers, `on_stall` hears `stall_reason()` every STALL_CHECK_S."""
        ...

    def stall_reason(self) -> str | None:
        """Why handed-over batches cannot move, when that is known (no live worker); else None."""
        ...

    def close(self) -> None: ...


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
    """Runs batches in this process, two at a time: one thread reads the next batch and queues its
    pictures on the decode threads while another embeds and writes the current one, so the encoder
    rarely waits for PIL. Transient backend
    errors are retried with backoff (the policy the Celery task declares); a batch whose backend stays
    away is dead-lettered. `submit_batch` blocks while two batches are already in hand."""

    in_process = True

    def __init__(self, settings: Settings, context: Any | None = None, owns_context: bool | None = None) -> None:
        """`context`: the worker context to run batches with (None: one opened here). `owns_context`
        (default: whether it was opened here): close it with the distributor."""
        from jointspace.workers.runtime import open_context

        self.settings = settings
        self.context = context or open_context(settings)
        self._owns_context = context is None if owns_context is None else owns_context
        self._prepare = ThreadPoolExecutor(1, thread_name_prefix="prepare")
        self._finish = ThreadPoolExecutor(1, thread_name_prefix="embed")
        # Bounds decoded images held in memory: the batch being embedded and the one being decoded.
        self._slots = threading.BoundedSemaphore(2)

    def submit_batch(self, posts: Sequence[Post], on_stall: StallNotice | None = None) -> Ticket:
        posts = list(posts)
        self._slots.acquire()
        prepared = self._prepare.submit(self.context.runner.prepare, posts)
        done = self._finish.submit(self._finish_with_retries, posts, prepared)
        done.add_done_callback(lambda _: self._slots.release())
        return FutureTicket(posts, done)

    def _finish_with_retries(self, posts: list[Post], prepared: Future[Any]) -> BatchOutcome:
        runner = self.context.runner
        for attempt in range(self.settings.task_max_retries + 1):
            try:
                return runner.finish_or_split(posts, prepared.result() if attempt == 0 else runner.prepare(posts))
            except transient_errors() as exc:
                if attempt == self.settings.task_max_retries:
                    outcome, letters = _dead_batch(posts, "write", outage_reason(attempt, exc))
                    self.context.dead_letters.put(letters)
                    return outcome
                delay = backoff_s(attempt + 1, self.settings.retry_backoff_max_s)
                log.warning("backend unavailable (%s); retrying the batch in %.0f s", exc, delay)
                time.sleep(delay)
            except Exception as exc:  # a bug or a model failure: the batch is kept, the run goes on
                log.exception("batch of %d posts failed", len(posts))
                outcome, letters = _dead_batch(posts, "embed", f"batch failed: {type(exc).__name__}: {exc}")
                self.context.dead_letters.put(letters)
                return outcome
        raise AssertionError("unreachable")

    def stall_reason(self) -> str | None:
        return None  # the batch runs in this process: nothing to wait for but itself

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
    broker_url: str | None = None  # named when Redis goes away while the ticket is followed

    def ready(self) -> bool:
        with broker_errors(self.broker_url):
            return bool(self.result.ready())

    def outcome(self, timeout: float | None = None) -> BatchOutcome:
        from celery.exceptions import TimeoutError as CeleryTimeout

        try:
            with broker_errors(self.broker_url):
                value = self.result.get(timeout=timeout, propagate=False, interval=0.2)
        except CeleryTimeout:
            raise TimeoutError(f"batch {self.result.id} not settled after {timeout} s") from None
        if self.result.successful():
            return BatchOutcome.from_json(value)
        # The task's on_failure has dead-lettered the batch; report it the same way. Celery rebuilds
        # the task's exception from its type's name, so the name says whether the backend was away.
        if isinstance(value, BaseException) and type(value).__name__ in {t.__name__ for t in transient_errors()}:
            return _dead_batch(self.posts, "write", outage_reason(None, value))[0]
        return _dead_batch(self.posts, "embed", f"task failed: {value!r}")[0]


class CeleryDistributor:
    """Enqueues batches as Celery tasks, holding back while the queue holds `queue_max_batches`
    batches so that Redis memory stays bounded however fast the producer reads. Redis down while
    batches are handed over or followed raises BrokerUnavailableError naming the URL (opening one
    checks nothing: the API opens it at start-up and answers 503 while Redis is away;
    `jointspace ingest` checks the broker itself before reading anything)."""

    in_process = False

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
        """Batches waiting in Redis."""
        from jointspace.workers.liveness import queued_batches

        return queued_batches(self._redis, self.settings.celery_queue)

    def stall_reason(self) -> str | None:
        """A run waiting on a queue nobody takes from looked like a hang (a bar at 0 posts for an hour)."""
        from jointspace.workers.liveness import live_workers

        with broker_errors(self.settings.broker_url):
            if live_workers(self._redis, self.settings.celery_queue):
                return None
            queued = self.queue_length()
        return (
            f"no live worker takes batches from queue {self.settings.celery_queue!r} ({queued} waiting):"
            " start one with `jointspace worker` (same JOINTSPACE_ settings); this run keeps waiting"
        )

    def submit_batch(self, posts: Sequence[Post], on_stall: StallNotice | None = None) -> Ticket:
        from jointspace.workers.celery_app import send_ingest_batch

        with broker_errors(self.settings.broker_url):
            started = looked = time.monotonic()
            while self.queue_length() >= self.settings.queue_max_batches:
                time.sleep(self.poll_s)
                # A full queue and no worker held a long run here without a word.
                if on_stall is not None and time.monotonic() - looked >= STALL_CHECK_S:
                    on_stall(self.stall_reason())
                    looked = time.monotonic()
            self.waited_s += time.monotonic() - started
            result = send_ingest_batch(self._app, self.settings, [p.to_json() for p in posts])
        return CeleryTicket(list(posts), result, self.settings.broker_url)

    def close(self) -> None:
        self._redis.close()
        self._app.close()


def runs_in_process(settings: Settings) -> bool:
    """The one rule: without a broker (`JOINTSPACE_BROKER_URL` unset) batches run in this process."""
    return not settings.broker_url


def open_distributor(
    settings: Settings,
    bundle: ModelBundle | None = None,
    backend: SearchBackend | None = None,
    dead_letters: DeadLetterStore | None = None,
) -> Distributor:
    """Celery when `JOINTSPACE_BROKER_URL` is set, else in-process. In-process, the pipeline shares
    the bundle, backend and dead letters given (those not given it opens itself, and closes with the
    distributor); the caller closes what it gave."""
    if not runs_in_process(settings):
        return CeleryDistributor(settings)
    from jointspace.workers.runtime import open_context

    context = open_context(settings, bundle=bundle, backend=backend, dead_letters=dead_letters)
    return InProcessDistributor(settings, context, owns_context=True)
