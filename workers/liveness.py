"""Batches of dead workers go back to the queue within a minute or two, not after the visibility timeout.

kombu's Redis transport keeps every delivered, unacknowledged message in the hash `unacked`
(delivery tag → the message) and its delivery time in the sorted set `unacked_index`; a message
goes back to its queue only when a consumer acks or rejects it, shuts down warmly, or when
`visibility_timeout` has passed since its delivery. A worker killed with SIGKILL (an OOM kill, a
lost machine) does none of these, so its batches wait for the visibility timeout, which must stay
above the longest a live worker may hold a batch (time limit plus retry countdown).

kombu does not record which consumer holds a delivery, so each worker records it here:
- every worker process that consumes (the main process, in both pools) beats a key
  `jointspace:worker:<instance>` with a TTL of 3 heartbeats, holding the queue it takes batches
  from (so a home counts only the workers of its own queue on a shared Redis database);
- on receiving a task it records `delivery tag → instance` in the hash `jointspace:deliveries`;
- every worker sweeps at start and then every 3 heartbeats: a delivery whose owner no longer beats,
  or that nobody owns a minute after its delivery (the owner died between fetching it and
  recording it), is put back at the head of its queue with kombu's own `restore_by_tag`, the same
  call kombu makes for a rejected message. Running a batch twice is harmless (writes are keyed
  by post id and unchanged posts are skipped), losing one is not, so the sweep errs that way.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

DELIVERIES_KEY = "jointspace:deliveries"
ALIVE_PREFIX = "jointspace:worker:"


@dataclass(frozen=True)
class SweepReport:
    requeued: list[str] = field(default_factory=list)  # delivery tags put back in their queue
    forgotten: int = 0  # owner records of deliveries acked since


# What a worker's beat held before beats named the queue: such a worker (started before the
# upgrade, gone at its restart) counts for every queue, as every worker did then.
UNNAMED_QUEUE = "1"


def live_workers(client: Any, queue: str) -> int:
    """Worker processes beating now that take batches from `queue` (a key lives 3 beats after its
    last: a killed worker counts for up to half a minute). Workers of other queues beat on the
    same database: another home's, another test's."""
    keys = list(client.scan_iter(match=ALIVE_PREFIX + "*", count=500))
    if not keys:
        return 0
    queues = client.mget(keys)  # None where a key expired since the scan
    return sum(1 for q in queues if q is not None and _text(q) in (queue, UNNAMED_QUEUE))


def queued_batches(client: Any, queue: str) -> int:
    """Batches waiting in Redis (kombu keeps one list per priority step beside the plain name)."""
    keys = [queue] + [f"{queue}\x06\x16{p}" for p in range(1, 10)]
    with client.pipeline() as pipe:
        for key in keys:
            pipe.llen(key)
        return int(sum(pipe.execute()))


def new_instance_id(hostname: str) -> str:
    """Unique per start: a worker restarted under the same hostname must not vouch for its dead self."""
    return f"{hostname}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class DeliveryRegistry:
    """Heartbeats and delivery owners in Redis, and the sweep over kombu's `unacked` hash."""

    def __init__(self, client: Any, qos: Any, queue: str, heartbeat_s: float) -> None:
        self.client = client  # redis.Redis on the broker
        self.qos = qos  # kombu.transport.redis.QoS: its keys and restore_by_tag
        self.queue = queue
        self.heartbeat_s = heartbeat_s
        self.ttl_s = max(1, round(3 * heartbeat_s))
        self.unowned_grace_s = max(60.0, 2 * self.ttl_s)

    def beat(self, instance: str) -> None:
        self.client.set(ALIVE_PREFIX + instance, self.queue, ex=self.ttl_s)

    def forget_instance(self, instance: str) -> None:
        self.client.delete(ALIVE_PREFIX + instance)

    def record(self, delivery_tag: str, instance: str) -> None:
        self.client.hset(DELIVERIES_KEY, delivery_tag, instance)

    def sweep(self, now: float | None = None) -> SweepReport:
        now = time.time() if now is None else now
        # Owners first, then `unacked`: a delivery received between the two reads is then unowned
        # and fresh (left alone). Read the other way round, its owner record would be dropped as
        # acked, and a later sweep would requeue it while its worker still runs it.
        owners = {_text(k): _text(v) for k, v in self.client.hgetall(DELIVERIES_KEY).items()}
        unacked = {_text(k): v for k, v in self.client.hgetall(self.qos.unacked_key).items()}
        delivered_at = {_text(k): s for k, s in self.client.zrange(self.qos.unacked_index_key, 0, -1, withscores=True)}
        alive = self._alive(set(owners.values()))
        requeued = []
        for tag, raw in unacked.items():
            owner = owners.get(tag)
            if owner is not None:
                if owner in alive:
                    continue
            elif not self._ours(raw) or now - delivered_at.get(tag, now) < self.unowned_grace_s:
                continue  # being received right now, or another application's message
            self.qos.restore_by_tag(tag, leftmost=True)
            requeued.append(tag)
        gone = [tag for tag in owners if tag not in unacked or tag in requeued]
        if gone:
            self.client.hdel(DELIVERIES_KEY, *gone)
        return SweepReport(requeued, len(gone) - len(requeued))

    def _alive(self, instances: set[str]) -> set[str]:
        ordered = sorted(instances)
        with self.client.pipeline(transaction=False) as pipe:
            for instance in ordered:
                pipe.exists(ALIVE_PREFIX + instance)
            flags = pipe.execute()
        return {i for i, flag in zip(ordered, flags, strict=True) if flag}

    def _ours(self, raw: bytes | str) -> bool:
        """kombu stores [message, exchange, routing key]; the queue's own tasks go by its name."""
        try:
            _, exchange, routing_key = json.loads(_text(raw))
        except (ValueError, TypeError):
            return False
        return self.queue in (exchange, routing_key)


class Heart:
    """A daemon thread in the worker's consuming process: beat, and sweep every 3 beats."""

    def __init__(self, registry: DeliveryRegistry, instance: str, on_sweep: Callable[[], object] | None = None) -> None:
        self.registry = registry
        self.instance = instance
        self.on_sweep = on_sweep  # more housekeeping at the same pace (outage.OutageRecovery)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jointspace-heartbeat", daemon=True)

    def start(self) -> None:
        self.registry.beat(self.instance)
        self._sweep()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.registry.forget_instance(self.instance)
        except Exception:  # Redis away at shutdown: the key expires on its own
            log.warning("could not remove the heartbeat of %s", self.instance)

    def _run(self) -> None:
        beats = 0
        while not self._stop.wait(self.registry.heartbeat_s):
            beats += 1
            try:
                self.registry.beat(self.instance)
            except Exception as exc:  # Redis restarting: keep beating, kombu reconnects on its side
                log.warning("heartbeat failed: %s", exc)
                continue
            if beats % 3 == 0:
                self._sweep()

    def _sweep(self) -> None:
        if self.on_sweep is not None:
            try:
                self.on_sweep()
            except Exception as exc:  # Redis or the backend away: the next sweep tries again
                log.warning("requeueing the posts of a backend outage failed: %s", exc)
        try:
            report = self.registry.sweep()
        except Exception as exc:
            log.warning("sweep for the batches of dead workers failed: %s", exc)
            return
        if report.requeued:
            log.warning(
                "requeued %d batch(es) held by workers that stopped beating: %s",
                len(report.requeued),
                ", ".join(report.requeued),
            )


_heart: Heart | None = None


def start_heart(registry: DeliveryRegistry, instance: str, on_sweep: Callable[[], object] | None = None) -> None:
    """In the worker's consuming process, once (a Celery bootstep calls it)."""
    global _heart
    _heart = Heart(registry, instance, on_sweep)
    _heart.start()


def stop_heart() -> None:
    global _heart
    if _heart is not None:
        _heart.stop()
        _heart = None


def record_delivery(delivery_tag: str | None) -> None:
    """Called on every task this process receives, before it is run or scheduled."""
    heart = _heart
    if heart is None or not delivery_tag:
        return
    try:
        heart.registry.record(delivery_tag, heart.instance)
    except Exception as exc:  # unrecorded: the sweep treats it as unowned, i.e. after a minute's grace
        log.warning("could not record delivery %s: %s", delivery_tag, exc)
