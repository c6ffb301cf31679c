"""The two alert stores keep the same contract: SQLite (no broker) and Redis (real redis-server)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from jointspace.alerts.records import Delivery, Match, SavedSearch, utc_now
from jointspace.alerts.store import AlertStore
from jointspace.alerts.store_redis import RedisAlertStore
from jointspace.alerts.store_sqlite import SqliteAlertStore
from jointspace.records import Post

STORES = ["sqlite", pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AlertStore]:
    if request.param == "sqlite":
        opened: AlertStore = SqliteAlertStore(tmp_path / "alerts.sqlite3", poll_s=0.05)
    else:
        opened = RedisAlertStore(request.getfixturevalue("redis_url"), f"test:alerts:{uuid.uuid4().hex[:8]}")
    yield opened
    opened.close()


def _match(search_id: str, post_id: str, seconds_ago: float = 0.0) -> Match:
    return Match(
        search_id,
        Post(id=post_id, image="/x.png", caption=f"post {post_id}", city="paris"),
        0.8,
        ("semantic",),
        0.8,
        matched_at=utc_now() - timedelta(seconds=seconds_ago),
    )


def test_a_match_is_recorded_once_per_search_and_post(store: AlertStore) -> None:
    first, second = SavedSearch("s1", "one", "red", min_score=0.5), SavedSearch("s2", "two", "blue", min_score=0.5)
    store.add(first, {"m": np.ones(4, np.float32) / 2})
    version = store.version()
    store.add(second, {})
    assert store.version() != version and [s.id for s in store.searches()] == ["s1", "s2"]
    new = store.record([_match("s1", "p1", 30), _match("s1", "p2", 20), _match("s2", "p1", 10)], {"s1": "http://h/"})
    assert [(m.search_id, m.post_id) for m in new] == [("s1", "p1"), ("s1", "p2"), ("s2", "p1")]
    assert all(m.cursor for m in new) and new[0].delivery.status == "pending" and new[2].delivery is None
    again = store.record([_match("s1", "p1"), _match("s1", "p3", 5), _match("gone", "p1")], {})
    assert [(m.search_id, m.post_id) for m in again] == [("s1", "p3")]  # p1 is old news; "gone" is no search
    assert [m.post_id for m in store.matches("s1")] == ["p3", "p2", "p1"]  # newest first
    assert [m.post_id for m in store.matches("s1", limit=2)] == ["p3", "p2"]
    assert [m.post_id for m in store.matches("s1", since=utc_now() - timedelta(seconds=25))] == ["p3", "p2"]
    assert store.count_matches("s1") == 3 and store.count_matches("s2") == 1
    assert sorted(store.pending()) == [("s1", "p1"), ("s1", "p2")] and store.pending(["p2"]) == [("s1", "p2")]
    store.set_delivery("s1", "p1", Delivery("failed", 3, "HTTP 500"))
    assert store.delivery("s1", "p1").error == "HTTP 500" and store.pending() == [("s1", "p2")]
    assert store.match("s1", "p2").post.caption == "post p2"


def test_vectors_journal_and_removal(store: AlertStore) -> None:
    store.add(SavedSearch("s1", "one", "red", min_score=0.5), {"m": np.arange(4, dtype=np.float32)})
    assert np.array_equal(store.vectors("m")["s1"], np.arange(4, dtype=np.float32)) and store.vectors("other") == {}
    store.set_vectors("other", {"s1": np.ones(4, np.float32), "removed-meanwhile": np.ones(4, np.float32)})
    assert set(store.vectors("other")) == {"s1"}
    store.owe(["p1", "p2", "p3"])
    assert store.owed(["p2", "p3", "p4"]) == {"p2", "p3"}
    store.settle(["p2", "p3"])
    assert store.owed(["p1", "p2", "p3"]) == {"p1"}
    store.record([_match("s1", "p1")], {"s1": "http://h/"})
    assert store.remove("s1") and not store.remove("s1")
    assert store.get("s1") is None and store.matches("s1") == [] and store.vectors("m") == {} and store.pending() == []
    assert store.record([_match("s1", "p9")], {}) == []  # a check finishing after the removal adds nothing


def test_events_follow_new_matches_from_a_cursor(store: AlertStore) -> None:
    store.add(SavedSearch("s1", "one", "red", min_score=0.5), {})
    store.record([_match("s1", "before")], {})
    found, cursor = store.events_after("s1", None, 0.0)  # None: from now on
    assert found == []
    threading.Timer(0.3, lambda: store.record([_match("s1", "a"), _match("s1", "b")], {})).start()
    started = time.monotonic()
    found, cursor = store.events_after("s1", cursor, 5.0)  # blocks until they come
    assert [m.post_id for m in found] == ["a", "b"] and time.monotonic() - started < 4.0
    assert found[-1].cursor == cursor
    store.record([_match("s1", "c")], {})
    assert [m.post_id for m in store.events_after("s1", cursor, 1.0)[0]] == ["c"]
    assert [m.post_id for m in store.events_after("s1", found[0].cursor, 0.0)[0]] == ["b", "c"]  # resume
    assert store.events_after("s1", store.events_after("s1", cursor, 0.0)[1], 0.2)[0] == []
    with pytest.raises(ValueError):  # a cursor the store never gave out: the API answers 400
        store.events_after("s1", "not-a-cursor", 0.0)


def test_a_taken_down_post_leaves_every_search_its_match_event_delivery_and_owed_check(store: AlertStore) -> None:
    store.add(SavedSearch("s1", "one", "red", min_score=0.5), {})
    store.add(SavedSearch("s2", "two", "blue", min_score=0.5), {})
    (first,) = store.record([_match("s1", "p0", 30)], {})
    store.record([_match("s1", "p1", 20), _match("s1", "p2", 10), _match("s2", "p1", 5)], {"s1": "http://h/"})
    store.owe(["p1", "p2"])
    assert store.forget_posts(["p1", "never-matched"]) == 2
    assert [m.post_id for m in store.matches("s1")] == ["p2", "p0"] and store.matches("s2") == []
    assert store.count_matches("s1") == 2 and store.match("s1", "p1") is None
    assert store.pending() == [("s1", "p2")]  # no webhook is owed for it any more
    assert store.owed(["p1", "p2"]) == {"p2"}
    events, _ = store.events_after("s1", first.cursor, 0)
    assert [m.post_id for m in events] == ["p2"]  # the event stream forgets it too
    assert store.forget_posts([]) == 0
