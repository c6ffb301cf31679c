"""Thin Celery tasks over the batch runner. Payloads are JSON: `{"posts": [Post.to_json(), ...]}`."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from jointspace.workers.celery_app import app
from jointspace.workers.dead_letters import DeadLetter, open_dead_letters
from jointspace.workers.runtime import process_context

from jointspace.errors import BackendUnavailableError
from jointspace.records import Post
from jointspace.settings import get_settings

log = logging.getLogger(__name__)


def transient_errors() -> tuple[type[BaseException], ...]:
    """Errors worth retrying the batch for: the backend, the broker or the network is away for a while."""
    import elastic_transport
    import redis

    return (
        BackendUnavailableError,
        ConnectionError,
        TimeoutError,
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        elastic_transport.ConnectionError,
        elastic_transport.ConnectionTimeout,
    )


class IngestTask(Task):
    def on_failure(
        self, exc: BaseException, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any], einfo: Any
    ) -> None:
        """Retries exhausted or a permanent error: the batch goes to the dead letters, never nowhere."""
        payload = args[0] if args else kwargs.get("payload", {})
        stage = "write" if isinstance(exc, transient_errors()) else "embed"
        reason = f"batch failed after {self.request.retries} retries: {type(exc).__name__}: {exc}"
        letters = [DeadLetter(key=p["id"], stage=stage, reason=reason, post=p) for p in payload.get("posts", [])]
        try:
            # Its own connection: after a hard time limit this runs in the parent, which has no model.
            store = open_dead_letters(get_settings())
            try:
                store.put(letters)
            finally:
                store.close()
        except Exception:  # the store itself is down: the error is logged, Celery records the failure
            log.exception("could not dead-letter %d posts of task %s", len(letters), task_id)


_settings = get_settings()


@app.task(
    bind=True,
    base=IngestTask,
    name="jointspace.ingest_batch",
    autoretry_for=transient_errors(),
    retry_backoff=True,
    retry_backoff_max=_settings.retry_backoff_max_s,
    retry_jitter=True,
    max_retries=_settings.task_max_retries,
    acks_late=True,
    reject_on_worker_lost=True,
)
def ingest_batch(self: Task, payload: dict[str, Any]) -> dict[str, Any]:
    """Embed and index one batch; returns the BatchOutcome as JSON. Safe to run twice."""
    posts = [Post.from_json(p) for p in payload["posts"]]
    outcome = process_context(get_settings()).runner.run(posts, skip_unchanged=payload.get("skip_unchanged", True))
    return outcome.to_json()


# --- alert webhooks (jointspace.alerts.webhooks) ---------------------------------------------------
_alert_store: Any = None


def _store() -> Any:
    """One alert store per worker process, opened on first use."""
    global _alert_store
    if _alert_store is None:
        from jointspace.alerts import open_alert_store

        _alert_store = open_alert_store(get_settings())
    return _alert_store


class DeliverTask(Task):
    def on_failure(
        self, exc: BaseException, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any], einfo: Any
    ) -> None:
        """Anything but a webhook answer (the store away past the retries, a bug): keep the reason."""
        from jointspace.alerts.records import Delivery

        payload = args[0] if args else kwargs.get("payload", {})
        try:
            store = _store()
            current = store.delivery(payload["search_id"], payload["post_id"])
            if current is not None and current.status == "pending":
                store.set_delivery(
                    payload["search_id"],
                    payload["post_id"],
                    Delivery("failed", current.attempts, f"{type(exc).__name__}: {exc}"),
                )
        except Exception:
            log.exception("could not record the failed delivery of task %s", task_id)


def _webhook_retry() -> tuple[type[BaseException], ...]:
    from jointspace.alerts.webhooks import WebhookRetry

    return (WebhookRetry, *transient_errors())


@app.task(
    bind=True,
    base=DeliverTask,
    name="jointspace.deliver_alert",
    autoretry_for=_webhook_retry(),
    retry_backoff=True,
    retry_backoff_max=_settings.alerts_webhook_backoff_max_s,
    retry_jitter=True,
    max_retries=_settings.alerts_webhook_max_retries + 1,
    acks_late=True,
    reject_on_worker_lost=True,
)
def deliver_alert(self: Task, payload: dict[str, Any]) -> bool:
    """POST one match to its search's webhook; the attempt's outcome is written to the alert store.
    `attempt` itself gives up after alerts_webhook_max_retries retries (recording why)."""
    from jointspace.alerts.webhooks import attempt

    return attempt(_store(), str(payload["search_id"]), str(payload["post_id"]), get_settings())
