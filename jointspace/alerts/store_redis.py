"""The alert store in Redis (with a broker: every worker process, on every machine, shares it).

Keys under the prefix P (Settings.alerts_key_prefix):
  P:searches             hash  search id → SavedSearch JSON
  P:version              int   bumped on add/remove (checkers cache compiled searches by it)
  P:models               set   model names that have vectors; P:vectors:<model> hash id → float32 bytes
  P:owed                 set   post ids written but not yet checked (a worker died between the two)
  P:m:<id>               hash  post id → "<stream id>|<Match JSON>" (once per search and post)
  P:t:<id>               zset  post id → time recorded (ms): newest-first listing and --since
  P:stream:<id>          stream one entry per match (`post_id`, `match`): the per-search stream
  P:w:<id>               hash  post id → Delivery JSON (searches with a webhook)
A Lua script records a batch's matches: the existence check, the stream entry, the hash, the
time index and the pending delivery happen atomically, so a redelivered batch adds nothing.
Give this Redis an append-only file in production (as for the stream source), or a restart loses
the saved searches.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import cast

import numpy as np
import redis
from redis.typing import EncodableT, FieldT

from .records import Delivery, Match, SavedSearch

_RECORD = """
local out = {}
local n = (#KEYS - 1) / 4
for i = 0, n - 1 do
  local m, t, s, w = KEYS[4*i+2], KEYS[4*i+3], KEYS[4*i+4], KEYS[4*i+5]
  local search, post, data, ms, delivery = ARGV[5*i+2], ARGV[5*i+3], ARGV[5*i+4], ARGV[5*i+5], ARGV[5*i+6]
  if redis.call('HEXISTS', KEYS[1], search) == 1 and redis.call('HEXISTS', m, post) == 0 then
    local id = redis.call('XADD', s, 'MAXLEN', '~', ARGV[1], '*', 'post_id', post, 'match', data)
    redis.call('HSET', m, post, id .. '|' .. data)
    redis.call('ZADD', t, ms, post)
    if delivery ~= '' then redis.call('HSET', w, post, delivery) end
    out[#out+1] = id
  else
    out[#out+1] = ''
  end
end
return out
"""


class RedisAlertStore:
    """Thread-safe (redis-py's connection pool).

    `_redis` decodes replies (`decode_responses=True`), `_raw` does not; redis-py annotates every
    reply as `bytes | str` whichever the client, so the casts below say which one it is.
    """

    def __init__(self, url: str, prefix: str, stream_maxlen: int = 10_000) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, decode_responses=True)
        self._raw = redis.Redis.from_url(url)  # vectors are bytes
        self.prefix = prefix
        self.stream_maxlen = stream_maxlen
        self._record = self._redis.register_script(_RECORD)

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # --- saved searches -----------------------------------------------------------------------
    def add(self, search: SavedSearch, vectors: dict[str, np.ndarray]) -> None:
        with self._raw.pipeline() as pipe:  # MULTI/EXEC: the search and its vectors appear together
            pipe.hset(self._key("searches"), search.id, json.dumps(search.to_json()))
            for model, vector in vectors.items():
                pipe.sadd(self._key("models"), model)
                pipe.hset(self._key("vectors", model), search.id, np.asarray(vector, dtype=np.float32).tobytes())
            pipe.incr(self._key("version"))
            pipe.execute()

    def remove(self, search_id: str) -> bool:
        models = cast(set[str], self._redis.smembers(self._key("models")))
        with self._redis.pipeline() as pipe:
            pipe.hdel(self._key("searches"), search_id)
            for model in models:
                pipe.hdel(self._key("vectors", model), search_id)
            pipe.delete(*(self._key(kind, search_id) for kind in ("m", "t", "stream", "w")))
            pipe.incr(self._key("version"))
            return bool(pipe.execute()[0])

    def get(self, search_id: str) -> SavedSearch | None:
        data = self._redis.hget(self._key("searches"), search_id)
        return SavedSearch.from_json(json.loads(data)) if data else None

    def searches(self) -> list[SavedSearch]:
        found = [SavedSearch.from_json(json.loads(v)) for v in self._redis.hvals(self._key("searches"))]
        return sorted(found, key=lambda s: (s.created_at, s.id))

    def version(self) -> str:
        return str(self._redis.get(self._key("version")) or "0")

    def vectors(self, model: str) -> dict[str, np.ndarray]:
        return {
            key.decode(): np.frombuffer(value, dtype=np.float32)
            for key, value in cast(dict[bytes, bytes], self._raw.hgetall(self._key("vectors", model))).items()
        }

    def set_vectors(self, model: str, vectors: dict[str, np.ndarray]) -> None:
        live = set(self._redis.hkeys(self._key("searches")))
        keep: dict[FieldT, EncodableT] = {
            k: np.asarray(v, dtype=np.float32).tobytes() for k, v in vectors.items() if k in live
        }
        if keep:
            with self._raw.pipeline() as pipe:
                pipe.sadd(self._key("models"), model)
                pipe.hset(self._key("vectors", model), mapping=keep)
                pipe.execute()

    # --- journal --------------------------------------------------------------------------------
    def owe(self, post_ids: Sequence[str]) -> None:
        if post_ids:
            self._redis.sadd(self._key("owed"), *post_ids)

    def owed(self, post_ids: Sequence[str]) -> set[str]:
        ids = list(post_ids)
        if not ids:
            return set()
        flags = self._redis.smismember(self._key("owed"), ids)
        return {p for p, flag in zip(ids, flags, strict=True) if flag}

    def settle(self, post_ids: Sequence[str]) -> None:
        if post_ids:
            self._redis.srem(self._key("owed"), *post_ids)

    def forget_posts(self, post_ids: Sequence[str]) -> int:
        ids = list(post_ids)
        if not ids:
            return 0
        removed = 0
        for search_id in cast(list[str], self._redis.hkeys(self._key("searches"))):
            held = cast(list[str | None], self._redis.hmget(self._key("m", search_id), ids))
            found = [(post, value) for post, value in zip(ids, held, strict=True) if value is not None]
            if not found:
                continue
            with self._redis.pipeline() as pipe:
                # The stream entry's id is the value's prefix (see _RECORD): the event goes too.
                pipe.xdel(self._key("stream", search_id), *(value.split("|", 1)[0] for _, value in found))
                for kind in ("m", "w"):
                    pipe.hdel(self._key(kind, search_id), *(post for post, _ in found))
                pipe.zrem(self._key("t", search_id), *(post for post, _ in found))
                pipe.execute()
            removed += len(found)
        self._redis.srem(self._key("owed"), *ids)
        return removed

    # --- matches ----------------------------------------------------------------------------
    def record(self, matches: Sequence[Match], webhooks: dict[str, str]) -> list[Match]:
        if not matches:
            return []
        keys = [self._key("searches")]
        args: list[EncodableT] = [self.stream_maxlen]
        for match in matches:
            keys += [self._key(kind, match.search_id) for kind in ("m", "t", "stream", "w")]
            delivery = Delivery() if match.search_id in webhooks else None
            args += [
                match.search_id,
                match.post_id,
                json.dumps(match.with_(delivery=None).to_json()),
                int(match.matched_at.timestamp() * 1000),
                json.dumps(delivery.to_json()) if delivery else "",
            ]
        ids = self._record(keys=keys, args=args)
        return [
            m.with_(cursor=i, delivery=Delivery() if m.search_id in webhooks else None)
            for m, i in zip(matches, ids, strict=True)
            if i
        ]

    def _matches(self, search_id: str, post_ids: list[str]) -> list[Match]:
        if not post_ids:
            return []
        values = cast(list[str | None], self._redis.hmget(self._key("m", search_id), post_ids))
        deliveries = cast(list[str | None], self._redis.hmget(self._key("w", search_id), post_ids))
        found = []
        for value, delivery in zip(values, deliveries, strict=True):
            if value:
                cursor, _, data = value.partition("|")
                found.append(
                    Match.from_json(json.loads(data)).with_(
                        cursor=cursor, delivery=Delivery.from_json(json.loads(delivery)) if delivery else None
                    )
                )
        return found

    def matches(self, search_id: str, since: datetime | None = None, limit: int | None = None) -> list[Match]:
        low = int(since.timestamp() * 1000) if since else "-inf"
        ids = self._redis.zrevrangebyscore(
            self._key("t", search_id), "+inf", low, start=0 if limit is not None else None, num=limit
        )
        return self._matches(search_id, cast(list[str], ids))

    def count_matches(self, search_id: str) -> int:
        return int(self._redis.zcard(self._key("t", search_id)))

    def match(self, search_id: str, post_id: str) -> Match | None:
        found = self._matches(search_id, [post_id])
        return found[0] if found else None

    def events_after(self, search_id: str, cursor: str | None, block_s: float) -> tuple[list[Match], str]:
        stream = self._key("stream", search_id)
        if cursor is None:
            last = cast(list[tuple[str, dict[str, str]]], self._redis.xrevrange(stream, count=1))
            cursor = last[0][0] if last else "0-0"
        try:
            answer = cast(
                list[tuple[str, list[tuple[str, dict[str, str]]]]] | None,
                self._redis.xread({stream: cursor}, block=max(1, int(block_s * 1000)), count=500),
            )
        except redis.exceptions.ResponseError as exc:  # not a stream id: the protocol's ValueError
            raise ValueError(f"not a stream cursor: {cursor!r}") from exc
        found: list[Match] = []
        for _, entries in answer or ():
            for entry_id, fields in entries:
                found.append(Match.from_json(json.loads(fields["match"])).with_(cursor=entry_id))
                cursor = entry_id
        return found, cursor

    # --- deliveries -------------------------------------------------------------------------
    def delivery(self, search_id: str, post_id: str) -> Delivery | None:
        data = self._redis.hget(self._key("w", search_id), post_id)
        return Delivery.from_json(json.loads(data)) if data else None

    def set_delivery(self, search_id: str, post_id: str, delivery: Delivery) -> None:
        # Only while the match exists: a delivery finishing after its search was removed leaves nothing.
        if self._redis.hexists(self._key("m", search_id), post_id):
            self._redis.hset(self._key("w", search_id), post_id, json.dumps(delivery.to_json()))

    def pending(self, post_ids: Iterable[str] | None = None) -> list[tuple[str, str]]:
        wanted = None if post_ids is None else set(post_ids)
        found = []
        for search_id in cast(list[str], self._redis.hkeys(self._key("searches"))):
            for post_id, data in cast(dict[str, str], self._redis.hgetall(self._key("w", search_id))).items():
                if (wanted is None or post_id in wanted) and json.loads(data).get("status") == "pending":
                    found.append((search_id, post_id))
        return found

    def close(self) -> None:
        self._redis.close()
        self._raw.close()
