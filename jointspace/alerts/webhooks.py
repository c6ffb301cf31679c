"""Webhook delivery: one POST per match, retried with exponential backoff, the outcome kept.

A match's delivery is recorded as `pending` together with the match itself (store.record), so a
process that dies before posting leaves it pending, never forgotten. With a broker the POST is a
Celery task (`jointspace.deliver_alert`, retry policy declared on the task, late acks: a killed
worker's delivery runs again); without one, a small thread pool of the indexing process retries.
Receivers get `X-Jointspace-Delivery: <search id>:<post id>` to drop the rare repeat (at-least-once).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import httpx

from jointspace.backoff import backoff_s
from jointspace.settings import Settings

from .records import Delivery, Match, SavedSearch, utc_now
from .store import AlertStore

log = logging.getLogger(__name__)

# Answers worth another attempt: the receiver is busy, restarting or behind a gateway that is.
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


class WebhookRetry(Exception):
    """A transient failure: try again later (the reason is in the message)."""


def alerts_queue(settings: Settings) -> str:
    """The Celery queue of webhook deliveries (apart from the ingest queue, so that an alert never
    waits behind the ingest backlog)."""
    return settings.alerts_queue or f"{settings.celery_queue}-alerts"


def payload(search: SavedSearch, match: Match) -> dict[str, Any]:
    return {
        "alert": {k: v for k, v in search.to_json().items() if k != "webhook"},
        "match": {k: v for k, v in match.to_json().items() if k not in ("webhook", "cursor")},
    }


def post_once(url: str, body: dict[str, Any], delivery_key: str, timeout_s: float) -> str | None:
    """POSTs `body` as JSON. None when delivered (2xx); the reason when the receiver refused for good.
    Raises WebhookRetry for a failure worth retrying (network, timeout, 408/429/5xx)."""
    try:
        # Streamed, and only the first bytes read: a receiver answering with a huge body must not
        # fill the worker's memory (its reason is cut to 200 characters anyway).
        with httpx.stream(
            "POST",
            url,
            json=body,
            timeout=timeout_s,
            follow_redirects=False,
            headers={"X-Jointspace-Delivery": delivery_key, "User-Agent": "jointspace-alerts"},
        ) as answer:
            status = answer.status_code
            head = b""
            if not 200 <= status < 300:
                for chunk in answer.iter_bytes():
                    head += chunk
                    if len(head) >= 800:
                        break
    except httpx.HTTPError as exc:
        raise WebhookRetry(f"{type(exc).__name__}: {exc}") from exc
    if 200 <= status < 300:
        return None
    reason = f"HTTP {status}: {head.decode('utf-8', 'replace')[:200].strip()}"
    if status in RETRY_STATUS:
        raise WebhookRetry(reason)
    return reason


def attempt(store: AlertStore, search_id: str, post_id: str, settings: Settings) -> bool:
    """One delivery attempt of a pending match, its outcome written to the store.

    Returns True when nothing more is to be done (delivered, failed for good, already settled, or
    the search or match is gone); raises WebhookRetry when a later attempt should follow.
    """
    search = store.get(search_id)
    match = store.match(search_id, post_id)
    current = store.delivery(search_id, post_id)
    if search is None or match is None or not search.webhook or current is None or current.status != "pending":
        return True
    attempts = current.attempts + 1
    try:
        refused = post_once(
            search.webhook, payload(search, match), f"{search_id}:{post_id}", settings.alerts_webhook_timeout_s
        )
    except WebhookRetry as exc:
        if attempts > settings.alerts_webhook_max_retries:
            store.set_delivery(
                search_id, post_id, Delivery("failed", attempts, f"gave up after {attempts} attempts: {exc}")
            )
            log.warning("webhook of alert %s for post %s failed for good: %s", search_id, post_id, exc)
            return True
        store.set_delivery(search_id, post_id, Delivery("pending", attempts, str(exc)))
        raise
    if refused is None:
        store.set_delivery(search_id, post_id, Delivery("delivered", attempts, None))
    else:
        store.set_delivery(search_id, post_id, Delivery("failed", attempts, refused))
        log.warning("webhook of alert %s refused post %s: %s", search_id, post_id, refused)
    return True


class WebhookDispatcher(Protocol):
    def dispatch(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Starts delivering these (search id, post id) matches; returns at once."""
        ...

    def close(self) -> None: ...


class CeleryWebhooks:
    """Hands each delivery to the workers as a task on the alerts queue."""

    def __init__(self, settings: Settings) -> None:
        from jointspace.workers.celery_app import make_app

        self.settings = settings
        self._app = make_app(settings)
        self._queue = alerts_queue(settings)

    def dispatch(self, pairs: Sequence[tuple[str, str]]) -> None:
        for search_id, post_id in pairs:
            self._app.send_task(
                "jointspace.deliver_alert", args=[{"search_id": search_id, "post_id": post_id}], queue=self._queue
            )

    def close(self) -> None:
        self._app.close()


class ThreadWebhooks:
    """Delivers in this process (no broker): a pool of two threads; a retry is scheduled on a timer
    after its backoff instead of sleeping in the pool, so one dead receiver never holds up the
    deliveries of other saved searches.

    Pending deliveries a dead process left behind (untouched for longer than a retry waits) are taken
    up when the next one opens the store."""

    def __init__(self, store: AlertStore, settings: Settings, resume: bool = True) -> None:
        self.store = store
        self.settings = settings
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="webhook")
        self._closing = threading.Event()
        self._inflight: set[tuple[str, str]] = set()
        self._timers: dict[tuple[str, str], threading.Timer] = {}
        self._lock = threading.Lock()
        if resume:
            self.dispatch(self._stale_pending())

    def _stale_pending(self) -> list[tuple[str, str]]:
        """Pending deliveries nobody has touched for longer than a retry can wait: their process died.
        (Fresher ones may belong to a live process, e.g. `serve` beside this `ingest`.)"""
        quiet_s = self.settings.alerts_webhook_backoff_max_s + 2 * self.settings.alerts_webhook_timeout_s
        now = utc_now()
        stale = []
        for search_id, post_id in self.store.pending():
            current = self.store.delivery(search_id, post_id)
            if current is not None and (now - current.updated_at).total_seconds() > quiet_s:
                stale.append((search_id, post_id))
        return stale

    def dispatch(self, pairs: Sequence[tuple[str, str]]) -> None:
        for pair in pairs:
            with self._lock:
                if pair in self._inflight:
                    continue
                self._inflight.add(pair)
            self._pool.submit(self._deliver, *pair)

    def _deliver(self, search_id: str, post_id: str) -> None:
        retry_in: float | None = None
        try:
            if not self._closing.is_set():
                attempt(self.store, search_id, post_id, self.settings)
        except WebhookRetry:
            current = self.store.delivery(search_id, post_id)
            retry_in = backoff_s(current.attempts if current else 1, self.settings.alerts_webhook_backoff_max_s)
        except Exception:  # the store went away: the delivery stays pending for the next process
            log.exception("webhook delivery of alert %s for post %s stopped", search_id, post_id)
        with self._lock:
            if retry_in is None or self._closing.is_set():
                self._inflight.discard((search_id, post_id))
                return
            timer = threading.Timer(retry_in, self._resubmit, args=(search_id, post_id))
            timer.daemon = True
            self._timers[(search_id, post_id)] = timer
            timer.start()

    def _resubmit(self, search_id: str, post_id: str) -> None:
        with self._lock:
            self._timers.pop((search_id, post_id), None)
            if self._closing.is_set():
                self._inflight.discard((search_id, post_id))
                return
        try:
            self._pool.submit(self._deliver, search_id, post_id)
        except RuntimeError:  # the pool shut down meanwhile: it stays pending for the next process
            with self._lock:
                self._inflight.discard((search_id, post_id))

    def wait_idle(self, timeout_s: float) -> bool:
        """Blocks until no delivery is in flight (tests, and `ingest` before it exits); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._inflight:
                    return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        """Gives deliveries in flight a moment to finish; those still retrying stay pending in the store."""
        self.wait_idle(self.settings.alerts_webhook_timeout_s)
        self._closing.set()
        with self._lock:
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()
        self._pool.shutdown(wait=True)
        with self._lock:
            self._inflight.clear()
