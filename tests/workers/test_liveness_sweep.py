"""The dead-worker sweep on a real Redis: a delivery received while the sweep reads is never taken
for acked (its owner record kept), so no later sweep requeues a batch that a live worker runs."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import redis
from jointspace.workers.liveness import DELIVERIES_KEY, DeliveryRegistry


class _Keys:
    """kombu's QoS as the sweep uses it: its two key names, and restore_by_tag recorded."""

    def __init__(self, prefix: str) -> None:
        self.unacked_key = f"{prefix}:unacked"
        self.unacked_index_key = f"{prefix}:unacked_index"
        self.restored: list[str] = []

    def restore_by_tag(self, tag: str, leftmost: bool = False) -> None:
        self.restored.append(tag)


class _ReceivesDuringFirstRead:
    """The broker client, with a worker receiving a task right after the sweep's first read."""

    def __init__(self, client: redis.Redis, arrive: Any) -> None:
        self._client, self._arrive, self._fired = client, arrive, False

    def hgetall(self, key: str) -> Any:
        value = self._client.hgetall(key)
        if not self._fired:
            self._fired = True
            self._arrive()
        return value

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_delivery_received_mid_sweep_keeps_its_owner(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    prefix = f"test-liveness-{uuid.uuid4().hex[:8]}"
    keys = _Keys(prefix)
    queue = "jointspace-ingest"
    live = f"{prefix}-worker"
    tag = f"{prefix}-tag"

    def arrive() -> None:  # what kombu and the worker's task_received hook write on receipt
        client.hset(keys.unacked_key, tag, json.dumps([{}, queue, queue]))
        client.zadd(keys.unacked_index_key, {tag: time.time()})
        client.hset(DELIVERIES_KEY, tag, live)

    registry = DeliveryRegistry(_ReceivesDuringFirstRead(client, arrive), keys, queue, heartbeat_s=10)
    registry.beat(live)
    try:
        report = registry.sweep()
        assert report.requeued == [] and keys.restored == []
        assert client.hget(DELIVERIES_KEY, tag) == live  # still owned: a later sweep leaves it alone
        later = DeliveryRegistry(client, keys, queue, heartbeat_s=10).sweep(now=time.time() + 3600)
        assert later.requeued == [] and keys.restored == []
    finally:
        client.hdel(DELIVERIES_KEY, tag)
        client.delete(keys.unacked_key, keys.unacked_index_key, f"jointspace:worker:{live}")
