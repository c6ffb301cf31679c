"""Kept image features: each indexed post's backbone output (pooled, float16), beside the index.

`jointspace train --from-index` trains a head on them and `jointspace reindex` recomputes a new
head's vectors from them without decoding a picture again (issue 17, "the space learns from the
stream").

One SQLite file per backbone, `<home>/features/<backbone key>.sqlite`, for both backends: the
features belong to the backbone, not to a bundle or an index, so they outlive every reindex and
alias swap (a reindex reads them while it fills the next index). Elasticsearch could carry them in
an unindexed `binary` field instead, but every new index would then have to copy them and every
reindex would read them back through `_source`; a local file is read at disk speed. The cost: with
workers on several machines the home folder (or this folder) must be shared for one machine to
train on all of them.

Writes are one transaction per batch, keyed by post id (`INSERT OR REPLACE`): a worker killed
anywhere (kill -9) leaves each post's features whole or absent, and a redelivered batch replaces
rather than duplicates. Past `max_posts` the posts kept longest ago are dropped, in the same
transaction. Hand-written over `sqlite3` (standard library) because the embedded store already
relies on SQLite's WAL for exactly this: one writer and many readers across processes.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jointspace.sqlite_ids import id_chunks, placeholders

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- rowid grows with every write, so the smallest rowids are the posts kept longest ago (a post kept
-- again moves to the end: REPLACE deletes and inserts).
CREATE TABLE IF NOT EXISTS features(id TEXT PRIMARY KEY, kept_at REAL NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS features_kept_at ON features(kept_at);
"""


def backbone_key(spec: dict[str, object]) -> str:
    """A short stable name for a backbone (name, weights file, input size, pool): features from two
    backbones with the same key are interchangeable."""
    ident = json.dumps(spec, sort_keys=True)
    return f"{spec.get('name', 'backbone')}-{hashlib.sha1(ident.encode()).hexdigest()[:8]}"


def features_dir(home: Path) -> Path:
    return Path(home) / "features"


@dataclass(frozen=True, slots=True)
class KeptInfo:
    post_id: str
    kept_at: float  # seconds since the epoch, when the worker kept it


class KeptFeatureStore:
    """Pooled features by post id for one backbone. Safe for the threads of one process and for
    several processes (SQLite's write lock)."""

    def __init__(self, folder: Path, key: str, dim: int, max_posts: int) -> None:
        self.key = key
        self.dim = dim
        self.max_posts = max_posts
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{key}.sqlite"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a committed batch survives a killed process (what a worker kill does); only a
        # power cut may lose the last batches, which a reindex then decodes again.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT value FROM meta WHERE key = 'dim'").fetchone()
                if row is None:
                    self._db.execute("INSERT INTO meta(key, value) VALUES ('dim', ?)", (str(dim),))
                elif int(row[0]) != dim:
                    raise ValueError(f"{self.path} holds {row[0]}-d features, not {dim}-d")
            finally:
                self._db.execute("COMMIT")

    def put(self, post_ids: Sequence[str], features: np.ndarray) -> int:
        """Keeps one row per post (replacing an older one) in one transaction; returns how many
        posts were dropped to stay within `max_posts`."""
        rows = np.ascontiguousarray(features, dtype=np.float16)
        if rows.shape != (len(post_ids), self.dim):
            raise ValueError(f"features of shape {rows.shape} for {len(post_ids)} posts of {self.dim} dims")
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO features(id, kept_at, data) VALUES (?, ?, ?)",
                    [(pid, now, row.tobytes()) for pid, row in zip(post_ids, rows, strict=True)],
                )
                over = int(self._db.execute("SELECT count(*) FROM features").fetchone()[0]) - self.max_posts
                if over > 0:
                    self._db.execute(
                        "DELETE FROM features WHERE rowid IN (SELECT rowid FROM features ORDER BY rowid LIMIT ?)",
                        (over,),
                    )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return max(0, over)

    def get_many(self, post_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """float16 (dim,) rows of the posts that have kept features."""
        out: dict[str, np.ndarray] = {}
        with self._lock:
            for chunk in id_chunks(post_ids):
                query = f"SELECT id, data FROM features WHERE id IN ({placeholders(chunk)})"
                for pid, data in self._db.execute(query, chunk):
                    out[pid] = np.frombuffer(data, dtype=np.float16)
        return out

    def kept(self, since: float | None = None) -> list[KeptInfo]:
        """Every kept post (kept at or after `since`), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kept_at FROM features WHERE kept_at >= ? ORDER BY rowid", (since or 0.0,)
            ).fetchall()
        return [KeptInfo(pid, float(at)) for pid, at in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM features").fetchone()[0])

    def forget(self, post_ids: Sequence[str]) -> int:
        """Removes the posts' rows (a takedown that came while their batch ran); returns how many."""
        with self._lock:
            return _delete_ids(self._db, post_ids)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def forget_kept(home: Path, post_ids: Sequence[str]) -> int:
    """Removes the posts' features from every backbone's file (a takedown); returns rows removed."""
    removed = 0
    for path in sorted(features_dir(home).glob("*.sqlite")) if post_ids else []:
        db = sqlite3.connect(path, isolation_level=None, timeout=60.0)  # waits out a worker's write
        try:
            removed += _delete_ids(db, post_ids)
        finally:
            db.close()
    return removed


def _delete_ids(db: sqlite3.Connection, post_ids: Sequence[str]) -> int:
    removed = 0
    for chunk in id_chunks(post_ids):
        removed += db.execute(f"DELETE FROM features WHERE id IN ({placeholders(chunk)})", chunk).rowcount
    return removed


def open_kept_features(home: Path, spec: dict[str, object], dim: int, max_posts: int) -> KeptFeatureStore | None:
    """The store for a backbone; None when keeping is off (`max_posts` 0)."""
    if max_posts <= 0:
        return None
    return KeptFeatureStore(features_dir(home), backbone_key(spec), dim, max_posts)


def existing_kept_features(home: Path, spec: dict[str, object]) -> Path | None:
    """The store file of a backbone, if any worker kept features with it."""
    path = features_dir(home) / f"{backbone_key(spec)}.sqlite"
    return path if path.is_file() else None
