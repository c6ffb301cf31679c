"""Fixtures of the alert tests: a real local HTTP server receiving the webhooks, and the worker
rig of tests/workers (real `jointspace worker` processes on the session's Redis)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for path in (TESTS, Path(__file__).parent):
    if str(path) not in sys.path:  # the histogram bundle is loaded by name, as a worker would
        sys.path.insert(0, str(path))

from webhook_server import WebhookServer  # noqa: E402
from workers.conftest import rig_factory  # noqa: E402, F401 - a fixture, used by name


@pytest.fixture
def webhooks() -> Iterator[WebhookServer]:
    server = WebhookServer().start()
    yield server
    server.stop()
