"""Where posts that cannot be indexed wait, with their reason: Redis when there is a broker, else SQLite.

One entry per post id (or per source line when the post never got an id), so a post that fails
twice is one entry, and a post indexed later is removed from here by the pipeline.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from jointspace.settings import Settings

STAGES = ("validate", "read", "decode", "embed", "write")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """`key` is the post id, or `origin` (file:line) for a post refused before it had one.

    `post` is the original JSON: the raw object for a validation failure, else the validated post.
    `base_dir` lets a retry resolve a relative image path the way the first attempt did.
    """

    key: str
    stage: str
    reason: str
    post: dict[str, Any] | None = None
    origin: str | None = None
    base_dir: str | None = None
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeadLetter:
        fields: dict[str, Any] = {
            k: data.get(k) for k in ("key", "stage", "reason", "post", "origin", "base_dir", "time")
        }
        return cls(**fields)


class DeadLetterStore(Protocol):
    def put(self, letters: Sequence[DeadLetter]) -> None: ...

    def list(self) -> list[DeadLetter]: ...

    def remove(self, keys: Iterable[str]) -> int: ...

    def purge(self) -> int: ...

    def count(self) -> int: ...

    def close(self) -> None: ...


class RedisDeadLetters:
    """A Redis hash: field = key, value = the letter's JSON. Survives workers; shared by all of them."""

    def __init__(self, url: str, hash_key: str, client: Any = None) -> None:
        """`client`: a redis.Redis answering text to share (left open by `close`), else one of its own."""
        import redis

        self._owned = client is None
        self._redis = redis.Redis.from_url(url, decode_responses=True) if client is None else client
        self._key = hash_key

    def put(self, letters: Sequence[DeadLetter]) -> None:
        if letters:
            self._redis.hset(self._key, mapping={letter.key: json.dumps(letter.to_json()) for letter in letters})

    def list(self) -> list[DeadLetter]:
        entries = self._redis.hgetall(self._key)
        return sorted((DeadLetter.from_json(json.loads(v)) for v in entries.values()), key=lambda letter: letter.time)

    def remove(self, keys: Iterable[str]) -> int:
        keys = list(keys)
        return int(self._redis.hdel(self._key, *keys)) if keys else 0

    def purge(self) -> int:
        n = self.count()
        self._redis.delete(self._key)
        return n

    def count(self) -> int:
        return int(self._redis.hlen(self._key))

    def close(self) -> None:
        if self._owned:
            self._redis.close()


class SqliteDeadLetters:
    """The same store in a file under JOINTSPACE_HOME, for the broker-less set-up."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._lock = threading.Lock()  # one connection shared by the producer and the pipeline threads
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS dead_letters (key TEXT PRIMARY KEY, time TEXT, letter TEXT)")
        self._db.commit()

    def put(self, letters: Sequence[DeadLetter]) -> None:
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO dead_letters VALUES (?, ?, ?)",
                [(letter.key, letter.time, json.dumps(letter.to_json())) for letter in letters],
            )

    def list(self) -> list[DeadLetter]:
        with self._lock:
            rows = self._db.execute("SELECT letter FROM dead_letters ORDER BY time").fetchall()
        return [DeadLetter.from_json(json.loads(r[0])) for r in rows]

    def remove(self, keys: Iterable[str]) -> int:
        with self._lock, self._db:
            cur = self._db.executemany("DELETE FROM dead_letters WHERE key = ?", [(k,) for k in keys])
        return cur.rowcount

    def purge(self) -> int:
        with self._lock, self._db:
            return self._db.execute("DELETE FROM dead_letters").rowcount

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def open_dead_letters(settings: Settings, client: Any = None) -> DeadLetterStore:
    """Redis at the broker when there is one (all workers share it; on `client` when given: a
    redis.Redis answering text), else a SQLite file under home."""
    if settings.broker_url:
        return RedisDeadLetters(settings.broker_url, settings.dead_letter_key, client)
    return SqliteDeadLetters(settings.home / "dead_letters.sqlite3")
