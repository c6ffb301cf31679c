"""Where saved searches, their query vectors and their matches live.

Redis (at the broker) when there is one: every worker process on every machine checks batches, so
the searches and the record of what matched must be shared, and Redis is already the one service
all of them reach (the dead letters live there too); it also carries the per-search stream that
the issue asks for. Without a broker everything runs in one process per command on one machine:
a SQLite file under JOINTSPACE_HOME (WAL: `serve` reads what an `ingest` process writes). Both
give the same guarantee: a match is recorded once per (search, post), atomically with its event
and its webhook delivery state, so a redelivered batch never alerts twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Protocol

import numpy as np

from jointspace.settings import Settings

from .records import Delivery, Match, SavedSearch


class AlertStore(Protocol):
    # --- saved searches -----------------------------------------------------------------------
    def add(self, search: SavedSearch, vectors: dict[str, np.ndarray]) -> None:
        """Saves a search with its query vector per model name (bundle); bumps `version()`."""
        ...

    def remove(self, search_id: str) -> bool:
        """Deletes the search, its vectors, matches, stream and deliveries. False when unknown."""
        ...

    def get(self, search_id: str) -> SavedSearch | None: ...

    def searches(self) -> list[SavedSearch]:
        """Every saved search, oldest first."""
        ...

    def version(self) -> str:
        """Changes whenever a search is added or removed (checkers cache their compiled searches by it)."""
        ...

    def vectors(self, model: str) -> dict[str, np.ndarray]:
        """search id → unit query vector made by `model` (searches without one are absent)."""
        ...

    def set_vectors(self, model: str, vectors: dict[str, np.ndarray]) -> None: ...

    # --- the journal of checks owed (a batch written but not yet checked) ---------------------
    def owe(self, post_ids: Sequence[str]) -> None: ...

    def owed(self, post_ids: Sequence[str]) -> set[str]: ...

    def settle(self, post_ids: Sequence[str]) -> None: ...

    def forget_posts(self, post_ids: Sequence[str]) -> int:
        """A takedown: the posts' matches (and their pending webhook deliveries) in every saved
        search, and their owed checks, go; returns the matches removed."""
        ...

    # --- matches ----------------------------------------------------------------------------
    def record(self, matches: Sequence[Match], webhooks: dict[str, str]) -> list[Match]:
        """Records the matches not recorded before (once per search and post) and returns those,
        with their cursor; a match of a search in `webhooks` (search id → URL) gets a pending delivery.
        Matches of searches removed meanwhile are dropped."""
        ...

    def matches(self, search_id: str, since: datetime | None = None, limit: int | None = None) -> list[Match]:
        """Newest first (by the time they were recorded), with their delivery state."""
        ...

    def count_matches(self, search_id: str) -> int: ...

    def events_after(self, search_id: str, cursor: str | None, block_s: float) -> tuple[list[Match], str]:
        """Matches recorded after `cursor` (None: from now on), waiting up to `block_s` for the first;
        returns them oldest first and the cursor to continue from. A cursor this store never gave
        out raises ValueError."""
        ...

    def match(self, search_id: str, post_id: str) -> Match | None: ...

    # --- webhook deliveries -----------------------------------------------------------------
    def delivery(self, search_id: str, post_id: str) -> Delivery | None: ...

    def set_delivery(self, search_id: str, post_id: str, delivery: Delivery) -> None: ...

    def pending(self, post_ids: Iterable[str] | None = None) -> list[tuple[str, str]]:
        """(search id, post id) of deliveries still pending, for these posts (None: all)."""
        ...

    def close(self) -> None: ...


def pending_in_process_deliveries(settings: Settings) -> int | None:
    """Webhook deliveries still pending in this home's SQLite store (the in-process ones, which a
    process that exits leaves to the next one that opens the alerts); None with a broker (Celery
    owns them) or when no saved search was ever made here (nothing is created to find out)."""
    if settings.broker_url or not has_alert_store(settings):
        return None
    with closing(open_alert_store(settings)) as store:
        return len(store.pending())


def has_alert_store(settings: Settings) -> bool:
    """Whether there is a store to read without creating one: a broker, or the home's SQLite file
    (absent until a search is saved)."""
    return bool(settings.broker_url) or sqlite_path(settings).is_file()


def sqlite_path(settings: Settings) -> Path:
    """Where a home without a broker keeps its saved searches."""
    return settings.home / "alerts.sqlite3"


def open_alert_store(settings: Settings) -> AlertStore:
    """Redis at the broker when there is one (all workers share it), else a SQLite file under home."""
    if settings.broker_url:
        from .store_redis import RedisAlertStore

        return RedisAlertStore(settings.broker_url, settings.alerts_key_prefix, settings.alerts_stream_maxlen)
    from .store_sqlite import SqliteAlertStore

    return SqliteAlertStore(sqlite_path(settings), settings.alerts_events_poll_s)
