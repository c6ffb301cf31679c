"""The alert store in one SQLite file (no broker: `ingest`, `serve` and the CLI on one machine).

WAL mode, so `serve` streams matches that an `ingest` process records. `matches.seq` orders the
events (the SSE cursor); UNIQUE(search_id, post_id) makes "once per (search, post)" the database's job.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from jointspace.sqlite_ids import id_chunks, placeholders

from .records import Delivery, Match, SavedSearch

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS searches(id TEXT PRIMARY KEY, created_at TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vectors(search_id TEXT NOT NULL, model TEXT NOT NULL, vector BLOB NOT NULL,
                                   PRIMARY KEY(search_id, model)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS owed(post_id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS matches(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    search_id TEXT NOT NULL,
    post_id TEXT NOT NULL,
    matched_at REAL NOT NULL,
    data TEXT NOT NULL,
    delivery TEXT,
    delivery_status TEXT,
    UNIQUE(search_id, post_id)
);
CREATE INDEX IF NOT EXISTS matches_time ON matches(search_id, matched_at);
CREATE INDEX IF NOT EXISTS matches_pending ON matches(post_id) WHERE delivery_status = 'pending';
"""


class SqliteAlertStore:
    """Thread-safe (one connection behind a lock); several processes share the file."""

    def __init__(self, path: Path, poll_s: float = 0.5) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.poll_s = poll_s  # how often `events_after` looks for new matches while it waits
        self._db = sqlite3.connect(path, timeout=60, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def _write(self, statements: Iterable[tuple[str, Sequence[object]]]) -> list[sqlite3.Cursor]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursors = [self._db.execute(sql, params) for sql, params in statements]
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return cursors

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # --- saved searches -----------------------------------------------------------------------
    def add(self, search: SavedSearch, vectors: dict[str, np.ndarray]) -> None:
        self._write(
            [
                (
                    "INSERT OR REPLACE INTO searches VALUES (?, ?, ?)",
                    (search.id, search.created_at.isoformat(), json.dumps(search.to_json())),
                ),
                *[
                    (
                        "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                        (search.id, model, np.asarray(v, dtype=np.float32).tobytes()),
                    )
                    for model, v in vectors.items()
                ],
                _bump_version(),
            ]
        )

    def remove(self, search_id: str) -> bool:
        cursors = self._write(
            [
                ("DELETE FROM searches WHERE id = ?", (search_id,)),
                ("DELETE FROM vectors WHERE search_id = ?", (search_id,)),
                ("DELETE FROM matches WHERE search_id = ?", (search_id,)),
                _bump_version(),
            ]
        )
        return cursors[0].rowcount > 0

    def get(self, search_id: str) -> SavedSearch | None:
        rows = self._read("SELECT data FROM searches WHERE id = ?", (search_id,))
        return SavedSearch.from_json(json.loads(rows[0][0])) if rows else None

    def searches(self) -> list[SavedSearch]:
        return [
            SavedSearch.from_json(json.loads(r[0]))
            for r in self._read("SELECT data FROM searches ORDER BY created_at, id")
        ]

    def version(self) -> str:
        rows = self._read("SELECT value FROM meta WHERE key = 'version'")
        return rows[0][0] if rows else "0"

    def vectors(self, model: str) -> dict[str, np.ndarray]:
        return {
            search_id: np.frombuffer(blob, dtype=np.float32)
            for search_id, blob in self._read("SELECT search_id, vector FROM vectors WHERE model = ?", (model,))
        }

    def set_vectors(self, model: str, vectors: dict[str, np.ndarray]) -> None:
        # Only for searches that still exist: a search removed meanwhile stays removed.
        self._write(
            [
                (
                    "INSERT OR REPLACE INTO vectors SELECT id, ?, ? FROM searches WHERE id = ?",
                    (model, np.asarray(v, dtype=np.float32).tobytes(), search_id),
                )
                for search_id, v in vectors.items()
            ]
        )

    # --- journal --------------------------------------------------------------------------------
    def owe(self, post_ids: Sequence[str]) -> None:
        if post_ids:
            with self._lock:
                self._db.executemany("INSERT OR IGNORE INTO owed VALUES (?)", [(p,) for p in post_ids])

    def owed(self, post_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in id_chunks(post_ids):
            found |= {
                r[0] for r in self._read(f"SELECT post_id FROM owed WHERE post_id IN ({placeholders(chunk)})", chunk)
            }
        return found

    def settle(self, post_ids: Sequence[str]) -> None:
        if post_ids:
            with self._lock:
                self._db.executemany("DELETE FROM owed WHERE post_id = ?", [(p,) for p in post_ids])

    def forget_posts(self, post_ids: Sequence[str]) -> int:
        removed = 0
        for chunk in id_chunks(post_ids):
            marks = placeholders(chunk)
            cursors = self._write(
                [
                    (f"DELETE FROM matches WHERE post_id IN ({marks})", chunk),
                    (f"DELETE FROM owed WHERE post_id IN ({marks})", chunk),
                ]
            )
            removed += cursors[0].rowcount
        return removed

    # --- matches ----------------------------------------------------------------------------
    def record(self, matches: Sequence[Match], webhooks: dict[str, str]) -> list[Match]:
        if not matches:
            return []
        new: list[Match] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                live = {r[0] for r in self._db.execute("SELECT id FROM searches")}
                for match in matches:
                    if match.search_id not in live:
                        continue
                    delivery = Delivery() if match.search_id in webhooks else None
                    cursor = self._db.execute(
                        "INSERT OR IGNORE INTO matches(search_id, post_id, matched_at, data, delivery, "
                        "delivery_status) VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            match.search_id,
                            match.post_id,
                            match.matched_at.timestamp(),
                            json.dumps(match.to_json()),
                            json.dumps(delivery.to_json()) if delivery else None,
                            delivery.status if delivery else None,
                        ),
                    )
                    if cursor.rowcount:
                        new.append(match.with_(cursor=str(cursor.lastrowid), delivery=delivery))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return new

    @staticmethod
    def _match(seq: int, data: str, delivery: str | None) -> Match:
        match = Match.from_json(json.loads(data))
        return match.with_(cursor=str(seq), delivery=Delivery.from_json(json.loads(delivery)) if delivery else None)

    def matches(self, search_id: str, since: datetime | None = None, limit: int | None = None) -> list[Match]:
        rows = self._read(
            "SELECT seq, data, delivery FROM matches WHERE search_id = ? AND matched_at >= ? "
            "ORDER BY matched_at DESC, seq DESC LIMIT ?",
            (search_id, since.timestamp() if since else float("-inf"), -1 if limit is None else limit),
        )
        return [self._match(*row) for row in rows]

    def count_matches(self, search_id: str) -> int:
        return int(self._read("SELECT count(*) FROM matches WHERE search_id = ?", (search_id,))[0][0])

    def events_after(self, search_id: str, cursor: str | None, block_s: float) -> tuple[list[Match], str]:
        if cursor is None:
            cursor = str(self._read("SELECT coalesce(max(seq), 0) FROM matches")[0][0])
        seq = int(cursor)  # not a number: the protocol's ValueError (the API's 400)
        if not -(2**63) <= seq < 2**63:  # past SQLite's integers: no cursor it ever gave out
            raise ValueError(f"not an event cursor: {cursor!r}")
        deadline = time.monotonic() + block_s
        while True:
            rows = self._read(
                "SELECT seq, data, delivery FROM matches WHERE search_id = ? AND seq > ? ORDER BY seq",
                (search_id, seq),
            )
            if rows or time.monotonic() >= deadline:
                break
            time.sleep(min(self.poll_s, max(0.0, deadline - time.monotonic())))
        found = [self._match(*row) for row in rows]
        return found, (found[-1].cursor or cursor) if found else cursor

    # --- deliveries -------------------------------------------------------------------------
    def delivery(self, search_id: str, post_id: str) -> Delivery | None:
        rows = self._read("SELECT delivery FROM matches WHERE search_id = ? AND post_id = ?", (search_id, post_id))
        return Delivery.from_json(json.loads(rows[0][0])) if rows and rows[0][0] else None

    def set_delivery(self, search_id: str, post_id: str, delivery: Delivery) -> None:
        self._write(
            [
                (
                    "UPDATE matches SET delivery = ?, delivery_status = ? WHERE search_id = ? AND post_id = ?",
                    (json.dumps(delivery.to_json()), delivery.status, search_id, post_id),
                )
            ]
        )

    def pending(self, post_ids: Iterable[str] | None = None) -> list[tuple[str, str]]:
        rows = self._read("SELECT search_id, post_id FROM matches WHERE delivery_status = 'pending' ORDER BY seq")
        wanted = None if post_ids is None else set(post_ids)
        return [(s, p) for s, p in rows if wanted is None or p in wanted]

    def match(self, search_id: str, post_id: str) -> Match | None:
        rows = self._read(
            "SELECT seq, data, delivery FROM matches WHERE search_id = ? AND post_id = ?", (search_id, post_id)
        )
        return self._match(*rows[0]) if rows else None

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _bump_version() -> tuple[str, Sequence[object]]:
    return (
        "INSERT INTO meta VALUES ('version', '1') ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        (),
    )
