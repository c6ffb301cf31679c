"""The retry waits: the capped doubling, and the equal jitter of the Celery ingest task, whose ten
retries with the default settings must outlast ~150 s of an unreachable backend every time (with
Celery's full jitter a CI run drew 25 s in all and dead-lettered a batch)."""

from __future__ import annotations

from jointspace.backoff import backoff_s, equal_jitter
from jointspace.settings import Settings


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_s(n, 60) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff_s(0, 60) == 1 and backoff_s(3, 0) == 0


def test_equal_jitter_keeps_half_and_draws_half() -> None:
    draws = [equal_jitter(8.0) for _ in range(2000)]
    assert min(draws) >= 4.0 and max(draws) <= 8.0
    assert min(draws) < 4.5 and max(draws) > 7.5  # drawn, not fixed


def test_the_ingest_tasks_retries_outlast_150_s_with_the_defaults() -> None:
    from celery.utils.time import get_exponential_backoff_interval
    from jointspace.workers.tasks import IngestTask, ingest_batch

    settings = Settings()
    assert ingest_batch.retry_backoff and ingest_batch.retry_jitter is False  # the jitter is IngestTask's
    assert "retry" in IngestTask.__dict__
    waits = [
        get_exponential_backoff_interval(1, n, settings.retry_backoff_max_s, full_jitter=False)
        for n in range(settings.task_max_retries)
    ]
    assert sum(w / 2 for w in waits) >= 150  # equal jitter's least
