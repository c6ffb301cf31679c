"""Saved searches that alert on new posts.

A saved search (an expression, its filters, mode and min_score) is checked against every batch the
pipeline writes (`checker.AlertChecker`, a `workers.batch_indexing.BatchListener`); a match is recorded
once per (search, post) in the store (`store`: Redis with a broker, else SQLite under home) and
delivered to the search's Redis stream, its webhook (`webhooks`) and the page (SSE, `api/routes/alerts.py`).
`service.AlertService` is what the CLI and the API call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jointspace.settings import Settings

from .records import Delivery, Match, SavedSearch
from .store import AlertStore, open_alert_store, pending_in_process_deliveries

if TYPE_CHECKING:
    import numpy as np

    from jointspace.protocols import ModelBundle, SearchBackend
    from jointspace.query.service import SearchService

    from .checker import AlertChecker


def open_alert_checker(settings: Settings, bundle: ModelBundle, backend: SearchBackend) -> AlertChecker:
    """The checker a pipeline process attaches to its BatchRunner: the shared store, webhooks through
    Celery with a broker (else a thread pool here), query vectors from this process's bundle."""
    from .checker import AlertChecker
    from .webhooks import CeleryWebhooks, ThreadWebhooks, WebhookDispatcher

    store = open_alert_store(settings)
    webhooks: WebhookDispatcher = CeleryWebhooks(settings) if settings.broker_url else ThreadWebhooks(store, settings)
    service: SearchService | None = None

    def vectorize(expression: str) -> np.ndarray:
        nonlocal service
        if service is None:
            from jointspace.query.service import SearchService

            service = SearchService(backend, bundle.text, settings)
        return service.query_vector(expression)

    return AlertChecker(store, backend, bundle.name, vectorize, webhooks, settings)


__all__ = [
    "AlertStore",
    "Delivery",
    "Match",
    "SavedSearch",
    "open_alert_checker",
    "open_alert_store",
    "pending_in_process_deliveries",
]
