"""Prometheus metrics for the API, one registry per app so that tests can build many apps."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "jointspace_http_requests_total",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "jointspace_http_request_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.searches = Counter(
            "jointspace_searches_total", "Searches by mode and outcome", ["mode", "outcome"], registry=self.registry
        )
        self.posts_submitted = Counter(
            "jointspace_posts_submitted_total",
            "Posts received by POST /posts, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.documents = Gauge(
            "jointspace_documents", "Documents in the backend (read at scrape time)", registry=self.registry
        )


class MetricsMiddleware:
    """Counts and times requests, labelled by the route template (never the raw path, which
    would give one series per post id)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = _route_template(scope)
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)


def _route_template(scope: Scope) -> str:
    # The router records the matched route in the (shared) scope while it dispatches; requests
    # that matched no API route (the page's static files, 404s) share one label.
    return getattr(scope.get("route"), "path", None) or "other"
