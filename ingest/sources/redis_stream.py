"""Posts from a Redis Stream, read continuously through a consumer group.

An entry is XACKed only once its post is indexed or dead-lettered (the ingest run calls `ack`), so
a consumer that dies leaves its entries pending; this consumer's own pending entries are read
again at start, and any consumer's entries idle for `stream_claim_idle_ms` are taken over with
XAUTOCLAIM. An entry holds the post as JSON in the field `post`, or the post's fields directly.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

from jointspace.ingest.sources.base import SourceItem
from jointspace.ingest.validate import InvalidPost, ValidationLimits, validate_post

from jointspace.errors import ConfigurationError
from jointspace.settings import Settings

log = logging.getLogger(__name__)


def _connect(url: str) -> Any:
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    # redis-py's own retry rides out a Redis restart (about a minute of backoff) before giving up.
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=10,
        retry=Retry(ExponentialBackoff(cap=4.0, base=0.1), 20),
        retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
    )


class RedisStreamSource:
    name = "redis-stream"

    def __init__(
        self,
        target: str,
        settings: Settings,
        consumer: str | None = None,
        idle_exit_s: float | None = None,
        block_ms: int = 1000,
    ) -> None:
        url = settings.stream_redis_url or settings.broker_url
        if not url:
            raise ConfigurationError(
                "the redis-stream source needs JOINTSPACE_STREAM_REDIS_URL or JOINTSPACE_BROKER_URL"
            )
        self.key = target if target not in ("", "-") else settings.stream_key
        self.group = settings.stream_group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.claim_idle_ms = settings.stream_claim_idle_ms
        self.idle_exit_s = idle_exit_s
        self.block_ms = block_ms
        self.batch = settings.batch_size
        self.limits = ValidationLimits.from_settings(settings)
        self.redis = _connect(url)
        self._ensure_group()

    def _ensure_group(self) -> None:
        import redis

        try:
            self.redis.xgroup_create(self.key, self.group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _item(self, entry_id: str, fields: dict[str, str]) -> SourceItem:
        origin = f"{self.key}/{entry_id}"
        try:
            raw: Any = json.loads(fields["post"]) if "post" in fields else dict(fields)
            if isinstance(raw, dict) and isinstance(raw.get("hashtags"), str):
                raw["hashtags"] = json.loads(raw["hashtags"])  # flat entries carry lists as JSON
        except json.JSONDecodeError as exc:
            return SourceItem(
                origin, entry_id, error=InvalidPost("post", f"not valid JSON: {exc.msg}", source=origin), raw=fields
            )
        try:
            return SourceItem(origin, entry_id, post=validate_post(raw, None, self.limits, "redis-stream"), raw=raw)
        except InvalidPost as exc:
            return SourceItem(origin, entry_id, error=InvalidPost(exc.field, exc.reason, source=origin), raw=raw)

    def _read(self, start: str) -> list[tuple[str, dict[str, str]]]:
        import redis

        try:
            reply = self.redis.xreadgroup(
                self.group,
                self.consumer,
                {self.key: start},
                count=self.batch,
                block=self.block_ms if start == ">" else None,
            )
        except redis.exceptions.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._ensure_group()  # Redis came back without its data: start the group again
            return []
        return [(entry_id, fields) for _, entries in (reply or []) for entry_id, fields in entries if fields]

    def _claim(self) -> list[tuple[str, dict[str, str]]]:
        claimed: list[tuple[str, dict[str, str]]] = []
        cursor = "0-0"
        while True:
            cursor, entries, *_ = self.redis.xautoclaim(
                self.key, self.group, self.consumer, self.claim_idle_ms, start_id=cursor, count=self.batch
            )
            claimed += [(entry_id, fields) for entry_id, fields in entries if fields]
            if cursor == "0-0":
                return claimed

    def __iter__(self) -> Iterator[SourceItem | None]:
        # Own entries left pending by an earlier run of this consumer first, page by page.
        after = "0"
        while page := self._read(after):
            for entry_id, fields in page:
                yield self._item(entry_id, fields)
            after = page[-1][0]
        idle_since = time.monotonic()
        last_claim = 0.0
        while True:
            entries = []
            if time.monotonic() - last_claim >= self.claim_idle_ms / 2000:
                entries += self._claim()
                last_claim = time.monotonic()
            entries += self._read(">")
            for entry_id, fields in entries:
                yield self._item(entry_id, fields)
            if entries:
                idle_since = time.monotonic()
            else:
                yield None  # nothing new: the consumer flushes its partial batch
                if self.idle_exit_s is not None and time.monotonic() - idle_since >= self.idle_exit_s:
                    return

    def ack(self, tokens: Sequence[Hashable]) -> None:
        if tokens:
            self.redis.xack(self.key, self.group, *tokens)

    def close(self) -> None:
        self.redis.close()


def redis_stream_source(target: str, settings: Settings, **options: Any) -> RedisStreamSource:
    return RedisStreamSource(target, settings, consumer=options.get("consumer"), idle_exit_s=options.get("idle_exit_s"))
