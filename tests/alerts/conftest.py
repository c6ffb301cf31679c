"""Fixtures of the alert tests: a real local HTTP server receiving the webhooks, and the worker
rig of tests/workers (real `jointspace worker` processes on the session's Redis)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.alerts.webhook_server import WebhookServer
from tests.workers.conftest import rig_factory  # noqa: F401 - a fixture, used by name


@pytest.fixture
def webhooks() -> Iterator[WebhookServer]:
    server = WebhookServer().start()
    yield server
    server.stop()
