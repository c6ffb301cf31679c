"""Prometheus counters for ingestion. The API serves them at /metrics; a worker can serve its own port."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

POSTS_INGESTED = Counter("jointspace_posts_ingested_total", "Posts written to the search backend.")
POSTS_UNCHANGED = Counter("jointspace_posts_unchanged_total", "Posts already indexed with the same content.")
POSTS_FAILED = Counter("jointspace_posts_failed_total", "Posts sent to the dead letters.", ["stage"])
STAGE_SECONDS = Histogram(
    "jointspace_batch_stage_seconds",
    "Time one batch spent in one pipeline stage.",
    ["stage"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
BATCH_SECONDS = Histogram(
    "jointspace_batch_seconds",
    "Time to process one whole batch.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)


def serve_metrics(port: int) -> None:
    """Serve /metrics on `port` from a daemon thread (one port per worker process)."""
    start_http_server(port)
