"""Thin Celery tasks over the batch runner. Payloads are JSON: `{"posts": [Post.to_json(), ...]}`.

Nothing here reads the environment at import: a task takes its settings, and its retry policy,
from the app it is bound to (`celery_app.app_settings`), configured at worker start-up."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from jointspace.workers.celery_app import INGEST_TASK, app, app_settings
from jointspace.workers.dead_letters import DeadLetter, open_dead_letters
from jointspace.workers.outage import mark_pending, outage_reason
from jointspace.workers.runtime import process_context
from jointspace.workers.transient import transient_errors

from jointspace.backoff import equal_jitter
from jointspace.records import Post
from jointspace.settings import Settings

log = logging.getLogger(__name__)


class BoundTask(Task):
    """A task that reads its settings from the app it is bound to (when the worker binds it, not at
    import); the ingest and webhook tasks take their retry policies from them."""

    @property
    def settings(self) -> Settings:
        return app_settings(self.app)


class IngestTask(BoundTask):
    # The retry policy, from the settings of the app the task is bound to (read when the worker
    # binds the task, not at import; Celery reads these as attributes).
    @property
    def max_retries(self) -> int:  # Celery reads it as the plain attribute it declares
        return self.settings.task_max_retries

    @property
    def retry_backoff_max(self) -> int:
        return self.settings.retry_backoff_max_s

    def retry(self, *args: Any, countdown: float | None = None, eta: Any = None, **kwargs: Any) -> Any:
        """Celery's own backoff, with "equal jitter": half of each wait fixed, half drawn. Its full
        jitter (`retry_jitter=True`) draws each wait from 0 up, so the ten retries outlasted
        anywhere from ~10 s to ~5 min of an unreachable backend (a CI run drew 25 s in all); now
        at least ~150 s with the defaults, and batches that failed together still spread out."""
        if countdown is not None and eta is None:
            countdown = equal_jitter(countdown)
        return super().retry(*args, countdown=countdown, eta=eta, **kwargs)

    def on_failure(
        self, exc: BaseException, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any], einfo: Any
    ) -> None:
        """Retries exhausted or a permanent error: the batch goes to the dead letters, never nowhere."""
        payload = args[0] if args else kwargs.get("payload", {})
        if isinstance(exc, transient_errors()):  # workers send these back when the backend answers (outage.py)
            stage, reason = "write", outage_reason(self.request.retries, exc)
        else:
            stage, reason = "embed", f"batch failed after {self.request.retries} retries: {type(exc).__name__}: {exc}"
        letters = [DeadLetter(key=p["id"], stage=stage, reason=reason, post=p) for p in payload.get("posts", [])]
        try:
            # Its own connection: after a hard time limit this runs in the parent, which has no model.
            store = open_dead_letters(self.settings)
            try:
                store.put(letters)
            finally:
                store.close()
            if stage == "write":
                mark_pending(self.settings)
        except Exception:  # the store itself is down: the error is logged, Celery records the failure
            log.exception("could not dead-letter %d posts of task %s", len(letters), task_id)


@app.task(
    bind=True,
    base=IngestTask,
    name=INGEST_TASK,
    autoretry_for=transient_errors(),
    retry_backoff=True,
    retry_jitter=False,  # IngestTask.retry draws its own (equal) jitter
    acks_late=True,
    reject_on_worker_lost=True,
)
def ingest_batch(self: Task, payload: dict[str, Any]) -> dict[str, Any]:
    """Embed and index one batch; returns the BatchOutcome as JSON. Safe to run twice."""
    posts = [Post.from_json(p) for p in payload["posts"]]
    context = process_context(app_settings(self.app))
    outcome = context.runner.run(posts, skip_unchanged=payload.get("skip_unchanged", True))
    return outcome.to_json()


# --- alert webhooks (jointspace.alerts.webhooks) ---------------------------------------------------
_alert_store: Any = None


def _store(settings: Settings) -> Any:
    """One alert store per worker process, opened on first use."""
    global _alert_store
    if _alert_store is None:
        from jointspace.alerts import open_alert_store

        _alert_store = open_alert_store(settings)
    return _alert_store


class DeliverTask(BoundTask):
    @property
    def max_retries(self) -> int:  # Celery reads it as the plain attribute it declares
        return self.settings.alerts_webhook_max_retries + 1

    @property
    def retry_backoff_max(self) -> int:
        return self.settings.alerts_webhook_backoff_max_s

    def on_failure(
        self, exc: BaseException, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any], einfo: Any
    ) -> None:
        """Anything but a webhook answer (the store away past the retries, a bug): keep the reason."""
        from jointspace.alerts.records import Delivery

        payload = args[0] if args else kwargs.get("payload", {})
        try:
            store = _store(self.settings)
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
    retry_jitter=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def deliver_alert(self: Task, payload: dict[str, Any]) -> bool:
    """POST one match to its search's webhook; the attempt's outcome is written to the alert store.
    `attempt` itself gives up after alerts_webhook_max_retries retries (recording why)."""
    from jointspace.alerts.webhooks import attempt

    settings = app_settings(self.app)
    return attempt(_store(settings), str(payload["search_id"]), str(payload["post_id"]), settings)
