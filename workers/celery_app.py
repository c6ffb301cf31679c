"""The Celery app: Redis broker, JSON only, late acks so a killed worker's batch is run again.

Start workers with `jointspace worker` (or `celery -A jointspace.workers.celery_app worker -O fair`);
watch them with `celery -A jointspace.workers.celery_app flower`.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from celery import Celery, bootsteps
from celery.signals import task_received, worker_process_init

from jointspace.settings import Settings


def make_app(settings: Settings | None = None) -> Celery:
    """An app configured from `settings`. None: configured on first use of its configuration from
    the environment (`worker_settings`): the module-level `app` below, which `celery -A` and
    `jointspace worker` start, so that importing this module reads nothing."""
    celery = Celery("jointspace", include=["jointspace.workers.tasks"])
    if settings is None:
        celery.add_defaults(lambda: celery_config(worker_settings()))  # Celery calls it lazily
    else:
        celery.conf.update(celery_config(settings))
    celery.steps["worker"].add(DeadWorkerSweep)
    return celery


INGEST_TASK = "jointspace.ingest_batch"


def send_ingest_batch(celery: Celery, settings: Settings, posts: list[dict[str, Any]]) -> Any:
    """Queues one batch (posts as JSON) for the ingest task by name: the producer need not import
    the tasks (and their model code). Returns the AsyncResult."""
    return celery.send_task(INGEST_TASK, args=[{"posts": posts}], queue=settings.celery_queue)


def app_settings(celery: Celery) -> Settings:
    """The settings an app was made from: what its tasks and worker start-up read."""
    settings: Settings = celery.conf.jointspace_settings
    return settings


def worker_settings() -> Settings:
    """Celery worker start-up, an entry point: the settings from the environment (`JOINTSPACE_*`)."""
    from jointspace.app import settings_from_environment

    return settings_from_environment()


def celery_config(settings: Settings) -> dict[str, Any]:
    return dict(
        broker_url=settings.broker_url,
        result_backend=settings.broker_url,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],  # never pickle: a payload is data, not code
        task_default_queue=settings.celery_queue,
        task_acks_late=True,  # ack after the batch is indexed, not when it is received
        task_reject_on_worker_lost=True,  # a child killed mid-batch puts its batch back
        worker_prefetch_multiplier=1,  # a batch is big: don't hoard them while others idle
        worker_proc_alive_timeout=settings.worker_start_timeout_s,  # a child loads its model before "up"
        task_time_limit=settings.task_time_limit_s,
        task_soft_time_limit=max(1, settings.task_time_limit_s - 30),
        task_track_started=True,
        result_expires=24 * 3600,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": settings.broker_visibility_timeout_s,
            # Look for a dead worker's batches at a pace set by the timeout (kombu's default
            # looks every 10th tick of 10 s, which leaves a short timeout waiting ~100 s).
            "unacked_restore_interval": max(1, min(10, settings.broker_visibility_timeout_s // 4)),
            "unacked_restore_throttle": 1,
        },
        result_backend_transport_options={"retry_policy": {"timeout": 5.0}},
        worker_send_task_events=True,  # Flower shows tasks live
        task_send_sent_event=True,
        jointspace_worker_heartbeat_s=settings.worker_heartbeat_s,  # read by DeadWorkerSweep
        # The tasks' retry policy (read when a task is bound, see tasks.py) and the settings themselves.
        jointspace_settings=settings,
    )


class DeadWorkerSweep(bootsteps.StartStopStep):
    """Beats a heartbeat and requeues the batches of workers that stopped beating (`liveness.py`),
    and the posts dead-lettered while the backend was away once it answers (`outage.py`)."""

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.connection: Any = None

    def start(self, worker: Any) -> None:
        from jointspace.workers import liveness
        from jointspace.workers.outage import OutageRecovery

        conf = worker.app.conf
        self.connection = worker.app.connection_for_write()
        channel = self.connection.default_channel
        registry = liveness.DeliveryRegistry(
            channel.client, channel.qos, conf.task_default_queue, conf.jointspace_worker_heartbeat_s
        )
        settings = app_settings(worker.app)
        recovery = OutageRecovery(settings, channel.client, partial(send_ingest_batch, worker.app, settings))
        liveness.start_heart(registry, liveness.new_instance_id(worker.hostname), recovery.run)

    def stop(self, worker: Any) -> None:
        from jointspace.workers import liveness

        liveness.stop_heart()
        if self.connection is not None:
            self.connection.release()
            self.connection = None


@task_received.connect
def _record_delivery(request: Any, **_: object) -> None:
    """Which worker holds which delivery: what kombu's `unacked` hash does not say."""
    from jointspace.workers import liveness

    liveness.record_delivery(request.message.delivery_tag)


app = make_app()


@worker_process_init.connect
def _load_model_once(**_: object) -> None:
    """Each worker process loads its model and backend at start, not on its first batch."""
    from jointspace.workers.runtime import process_context

    settings = app_settings(app)
    if settings.worker_metrics_port:
        from billiard.process import current_process
        from jointspace.workers.metrics import serve_metrics

        serve_metrics(settings.worker_metrics_port + (current_process().index or 0))
    context = process_context(settings)
    # Bundles load their networks on first use, and a first forward pass is slow: pay both now.
    from PIL import Image

    context.bundle.image.embed_images([Image.new("RGB", (224, 224), (128, 128, 128))])
    # Celery says "ready." when the parent consumes, which can be before this child has its model:
    # this line says when batches stop waiting for a model load (bench/ingest.py waits for it).
    logging.getLogger(__name__).info("worker process ready: model %s loaded", context.bundle.name)
