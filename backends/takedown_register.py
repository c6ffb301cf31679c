"""Where takedowns are recorded (protocols.TakedownRegister), per backend.

Apart from the index on purpose: a reindex copies the index, a restore brings back an older one,
and neither may bring back a post someone asked to remove. Elasticsearch keeps the register in its
own small index beside the alias (so every worker, on any machine, sees it); the embedded store
keeps it in a SQLite file in the home, outside the store folders that swaps and restores rename.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from jointspace.es_mappings.client import unavailable_as_error

from jointspace.errors import BackendUnavailableError
from jointspace.protocols import SearchBackend, TakedownRegister
from jointspace.records import utc_text
from jointspace.settings import Settings
from jointspace.sqlite_ids import id_chunks, placeholders

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch


class SqliteTakedowns:
    """The embedded store's register: one table in `<home>/takedowns.sqlite`. Safe for the threads
    of one process and for several processes (SQLite's write lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=60.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS takedowns(id TEXT PRIMARY KEY, at TEXT NOT NULL)")

    def record(self, post_ids: Sequence[str], at: str | None = None) -> None:
        at = at or utc_text(datetime.now(UTC))
        with self._lock:
            self._db.executemany(
                "INSERT OR IGNORE INTO takedowns(id, at) VALUES (?, ?)", [(pid, at) for pid in dict.fromkeys(post_ids)]
            )

    def lift(self, post_ids: Sequence[str]) -> list[str]:
        found = self.among(post_ids)
        with self._lock:
            self._db.executemany("DELETE FROM takedowns WHERE id = ?", [(pid,) for pid in found])
        return [pid for pid in dict.fromkeys(post_ids) if pid in found]

    def among(self, post_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self._lock:
            for chunk in id_chunks(dict.fromkeys(post_ids)):
                query = f"SELECT id FROM takedowns WHERE id IN ({placeholders(chunk)})"
                found.update(row[0] for row in self._db.execute(query, chunk))
        return found

    def entries(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(pid, at) for pid, at in self._db.execute("SELECT id, at FROM takedowns ORDER BY at, rowid")]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class ElasticsearchTakedowns:
    """The register as an index `<alias>.takedowns` (one document per post, its time in `at`); made
    on the first takedown. Not `<alias>-…`, which the index manager takes for the alias's own
    versioned indices. Reads use the realtime GET path, so a takedown needs no refresh to count."""

    MAPPING = {"dynamic": "strict", "properties": {"at": {"type": "date"}}}

    def __init__(self, client: Elasticsearch, alias: str, url: str) -> None:
        self.client = client
        self.index = f"{alias}.takedowns"
        self._url = url

    def record(self, post_ids: Sequence[str], at: str | None = None) -> None:
        from elasticsearch.helpers import bulk

        at = at or utc_text(datetime.now(UTC))
        with unavailable_as_error(self._url):
            self._ensure_index()
            # `create` keeps the first time of a post recorded twice; the conflict is not an error.
            actions = (
                {"_op_type": "create", "_index": self.index, "_id": pid, "at": at} for pid in dict.fromkeys(post_ids)
            )
            _, errors = bulk(self.client, actions, raise_on_error=False, refresh=False)
        real = [e for e in errors if next(iter(e.values())).get("status") != 409]  # type: ignore[union-attr]  # item dicts
        if real:
            raise RuntimeError(f"recording {len(real)} takedowns in {self.index} failed: {real[0]}")

    def lift(self, post_ids: Sequence[str]) -> list[str]:
        from elasticsearch.helpers import bulk

        found = self.among(post_ids)
        if found:
            with unavailable_as_error(self._url):
                bulk(self.client, ({"_op_type": "delete", "_index": self.index, "_id": pid} for pid in found))
        return [pid for pid in dict.fromkeys(post_ids) if pid in found]

    def among(self, post_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with unavailable_as_error(self._url):
            for chunk in id_chunks(dict.fromkeys(post_ids)):
                answer = self.client.mget(index=self.index, ids=chunk, source=False)
                for doc in answer["docs"]:
                    error = doc.get("error")
                    # A register not made yet answers each id with index_not_found: none taken down.
                    # Any other error (a shard away) must not pass for "not taken down": retry later.
                    kind = error.get("type") if isinstance(error, dict) else error
                    if kind and kind != "index_not_found_exception":
                        raise BackendUnavailableError(f"the takedown register {self.index} cannot be read: {error}")
                    if doc.get("found"):
                        found.add(doc["_id"])
        return found

    def entries(self) -> list[tuple[str, str]]:
        from elasticsearch.helpers import scan

        with unavailable_as_error(self._url):
            if not self.client.indices.exists(index=self.index):
                return []
            self.client.indices.refresh(index=self.index)  # a search sees only refreshed records
            rows = [(hit["_id"], str(hit["_source"]["at"])) for hit in scan(self.client, index=self.index)]
        return sorted(rows, key=lambda row: (row[1], row[0]))

    def close(self) -> None:
        self.client.close()

    def _ensure_index(self) -> None:
        from elasticsearch import BadRequestError

        if self.client.indices.exists(index=self.index):
            return
        try:
            self.client.indices.create(
                index=self.index,
                mappings=self.MAPPING,
                settings={"number_of_shards": 1, "auto_expand_replicas": "0-1"},
            )
        except BadRequestError as exc:
            if exc.error != "resource_already_exists_exception":  # another process made it meanwhile
                raise


def open_takedowns(settings: Settings) -> TakedownRegister:
    """The configured backend's register (Elasticsearch when `es_url` is set, else the home's file)."""
    if settings.es_url:
        from jointspace.es_mappings.client import connect

        return ElasticsearchTakedowns(connect(settings), settings.es_index_alias, settings.es_url)
    return SqliteTakedowns(settings.home / "takedowns.sqlite")


def remove_taken_down(settings: Settings, backend: SearchBackend) -> list[str]:
    """Deletes from `backend` every post recorded in the settings' register, and returns their ids:
    for an index that did not see the takedown happen (a restored backup older than it, an index a
    rollback brings back, or a reindex's new index filled before it)."""
    with closing(open_takedowns(settings)) as register:
        recorded = [pid for pid, _ in register.entries()]
    removed: list[str] = []
    for chunk in id_chunks(recorded):
        removed += [pid for pid in backend.get_many(chunk, with_vector=False) if backend.delete(pid)]
    if removed:
        backend.refresh()
    return removed
