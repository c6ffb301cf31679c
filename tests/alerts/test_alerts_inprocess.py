"""Saved searches on the in-process path (no broker: SQLite alert store), on the embedded store and
on the real Elasticsearch node, with a real local HTTP server receiving the webhooks.

The histogram bundle's geometry is known: the word `red` and a red picture have similarity 1, red
and any other colour of the corpus at most 2/3, so `red` with min_score 0.9 matches exactly the
red posts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from jointspace.query.service import SearchService
from jointspace.workers.batch_indexing import BatchRunner
from jointspace.workers.distributor import InProcessDistributor
from jointspace.workers.runtime import WorkerContext, decode_limits, open_context

from jointspace.alerts import open_alert_store
from jointspace.alerts.service import AlertService
from jointspace.records import Filters
from jointspace.settings import Settings
from tests.alerts.alert_support import colour_ids, corpus_with_prefix, read_posts
from tests.alerts.webhook_server import WebhookServer

BACKENDS = ["embedded", pytest.param("elasticsearch", marks=pytest.mark.es)]


def alert_settings(home: Path, es_url: str | None = None) -> Settings:
    from tests.workers.corpus import in_process_settings

    # Batches of 4 (as the other ingest tests) so that a corpus spans several batches; test-sized
    # image limits to match the corpus; everything else is the default.
    return in_process_settings(home, es_url=es_url, es_index_alias=f"alerts-{uuid.uuid4().hex[:8]}")


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    es_url = request.getfixturevalue("es_url") if request.param == "elasticsearch" else None
    made = alert_settings(tmp_path / "home", es_url)
    yield made
    if es_url:
        from elasticsearch import Elasticsearch

        with Elasticsearch(es_url, request_timeout=30) as client:
            client.indices.delete(index=f"{made.es_index_alias}-*", allow_no_indices=True, expand_wildcards="all")


@pytest.fixture
def context(settings: Settings) -> Iterator[WorkerContext]:
    opened = open_context(settings)
    yield opened
    opened.close()


def ingest(context: WorkerContext, settings: Settings, posts: list) -> None:
    distributor = InProcessDistributor(settings, context)
    try:
        for start in range(0, len(posts), settings.batch_size):
            outcome = distributor.submit_batch(posts[start : start + settings.batch_size]).outcome()
            assert not outcome.dead, outcome.dead
    finally:
        distributor._prepare.shutdown(wait=True)  # the context is the test's: close only the threads
        distributor._finish.shutdown(wait=True)


def alert_service(context: WorkerContext, settings: Settings) -> AlertService:
    search = SearchService(context.backend, context.bundle.text, settings)
    return AlertService(open_alert_store(settings), search, context.bundle.name, settings)


def wait_until(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


def test_new_matching_posts_are_recorded_once_and_delivered(
    tmp_path: Path, settings: Settings, context: WorkerContext, webhooks: WebhookServer
) -> None:
    old = corpus_with_prefix(tmp_path / "old", 12, "a")
    new = corpus_with_prefix(tmp_path / "new", 36, "b")
    ingest(context, settings, read_posts(old, settings))
    service = alert_service(context, settings)
    red = service.add("red", min_score=0.9, webhook=f"{webhooks.url}/flaky", name="red things")
    blue_paris = service.add("blue", min_score=0.9, filters=Filters(cities=("paris",)), webhook=f"{webhooks.url}/ok")
    red_words = service.add("red", mode="keyword", webhook=f"{webhooks.url}/gone")
    not_red = service.add("picture -red", mode="keyword")
    green = service.add("green city:tokyo", mode="hybrid", min_score=0.99)
    assert service.matches(red.id) == []  # posts indexed before the search was saved are not news

    ingest(context, settings, read_posts(new, settings))
    ingest(context, settings, read_posts(old, settings) + read_posts(new, settings))  # sent again: unchanged

    reds = colour_ids(new, "red")
    assert len(reds) == 6 and len(colour_ids(new, "blue", "paris")) == 2
    found = service.matches(red.id)
    assert [m.post_id for m in found] and {m.post_id for m in found} == reds and len(found) == len(reds)
    assert all(m.score == pytest.approx(1.0, abs=1e-5) and m.matched_by == ("semantic",) for m in found)
    times = [m.matched_at for m in found]
    assert times == sorted(times, reverse=True)  # newest first
    assert {m.post_id for m in service.matches(blue_paris.id)} == colour_ids(new, "blue", "paris")
    keyword = service.matches(red_words.id)
    assert {m.post_id for m in keyword} == reds and all(m.score > 0 for m in keyword)
    assert {m.post_id for m in service.matches(not_red.id)} == set(new.good) - reds
    hybrid = service.matches(green.id)
    assert {m.post_id for m in hybrid} == colour_ids(new, "green", "tokyo")
    assert all(m.matched_by == ("semantic", "keyword") for m in hybrid)

    # Webhooks: /flaky refuses each delivery twice (503) then accepts it; /gone refuses for good (404).
    wait_until(
        lambda: {r.delivery for r in webhooks.accepted("/flaky")} == {f"{red.id}:{p}" for p in reds},
        60,
        "the red matches to reach the flaky webhook",
    )
    wait_until(
        lambda: all(m.delivery and m.delivery.status != "pending" for m in service.matches(red_words.id)),
        30,
        "the refused deliveries to be settled",
    )
    assert len(webhooks.accepted("/flaky")) == len(reds)  # each match delivered once
    # The receiver's 200 comes before the delivery thread records it: wait for the record.
    wait_until(
        lambda: all(m.delivery.status == "delivered" for m in service.matches(red.id)),
        30,
        "the deliveries to be recorded",
    )
    assert all(m.delivery.attempts == 3 for m in service.matches(red.id))
    body = webhooks.accepted("/flaky")[0].body
    assert body["alert"]["id"] == red.id and body["alert"]["name"] == "red things" and body["match"]["id"] in reds
    assert sorted(r.delivery for r in webhooks.accepted("/ok")) == sorted(
        f"{blue_paris.id}:{p}" for p in colour_ids(new, "blue", "paris")
    )
    refused = service.matches(red_words.id)
    assert all(m.delivery.status == "failed" and m.delivery.error.startswith("HTTP 404") for m in refused)
    assert len(webhooks.all("/gone")) == len(reds)  # a 404 is not retried

    # --since: nothing recorded in the future; everything since a minute ago.
    from jointspace.alerts.service import parse_since

    assert [m.post_id for m in service.matches(red.id, since=parse_since("1m"))] == [m.post_id for m in found]
    assert service.matches(red.id, since=parse_since("2999-01-01")) == []
    assert {a["id"]: a["matches"] for a in service.list()}[red.id] == len(reds)
    assert service.remove(red.id) and service.store.get(red.id) is None
    service.store.close()


class _DiesAfterWrite:
    """The real checker, but the process "dies" (SystemExit escapes the pipeline) right after the write."""

    def __init__(self, checker) -> None:
        self.checker = checker

    def will_write(self, post_ids):
        return self.checker.will_write(post_ids)

    def owed(self, post_ids):
        return self.checker.owed(post_ids)

    def written(self, docs, redelivered=False):
        raise SystemExit("killed between the write and the alert check")


def test_a_batch_written_but_never_checked_is_checked_when_run_again(
    tmp_path: Path, settings: Settings, context: WorkerContext
) -> None:
    service = alert_service(context, settings)
    red = service.add("red", min_score=0.9)
    posts = read_posts(corpus_with_prefix(tmp_path / "new", 12, "b"), settings)
    dying = BatchRunner(
        context.bundle.image,
        context.bundle.name,
        context.backend,
        context.dead_letters,
        decode_limits(settings),
        context.executor,
        listener=_DiesAfterWrite(context.alerts),
    )
    with pytest.raises(SystemExit):
        dying.run(posts)
    context.backend.refresh()
    assert context.backend.count() == 12 and service.matches(red.id) == []  # written, not checked
    outcome = context.runner.run(posts)  # the batch redelivered to a live worker
    assert sorted(outcome.unchanged) == sorted(p.id for p in posts)  # nothing embedded again...
    reds = {p.id for p in posts if "red" in p.caption}
    assert {m.post_id for m in service.matches(red.id)} == reds  # ...but the check owed ran
    context.runner.run(posts)  # and a third delivery adds nothing
    assert len(service.matches(red.id)) == len(reds)
    assert service.store.owed([p.id for p in posts]) == set()
    service.store.close()


def test_filters_of_saved_searches_agree_with_the_backend(
    tmp_path: Path, settings: Settings, context: WorkerContext
) -> None:
    """The alert check filters new posts in Python (`post_passes`); the backend filters searches.
    Both must say the same for every filter the language has."""
    from datetime import datetime

    from jointspace.alerts.matching import post_passes

    posts = read_posts(corpus_with_prefix(tmp_path / "c", 18, "f"), settings)
    posts = [
        p.__class__(
            **{
                **{f: getattr(p, f) for f in p.__slots__},  # type: ignore[attr-defined]  # a slots dataclass
                "created_at": datetime(2024, 5, 1 + i % 3, 12),
                "source": ["API", "feed"][i % 2],  # stored as given: a source filter ignores case
                "hashtags": (*p.hashtags, f"n{i % 4}"),
            }
        )
        for i, p in enumerate(posts)
    ]
    ingest(context, settings, posts)
    context.backend.refresh()
    cases = [
        Filters(cities=("paris",)),
        Filters(cities=("London", "tokyo")),
        Filters(hashtags=("n1", "n2")),
        Filters(sources=("api",)),
        Filters(sources=("Feed",)),
        Filters(after=datetime(2024, 5, 2)),
        Filters(before=datetime(2024, 5, 2, 12)),
        Filters(cities=("paris",), hashtags=("red", "n0"), after=datetime(2024, 5, 1, 12)),
    ]
    probe = context.bundle.text.embed_words(["white"])[0]
    for rule in cases:
        by_backend = {h.id for h in context.backend.knn(probe, 100, filters=rule)}
        assert by_backend == {p.id for p in posts if post_passes(rule, p)}, rule
        assert any(post_passes(rule, p) for p in posts) and not all(post_passes(rule, p) for p in posts), rule


def test_one_named_search_saved_by_two_callers_at_once_is_saved_once(
    settings: Settings, context: WorkerContext
) -> None:
    """Two processes (here two services over one home, in two threads) each look for a copy before
    either has saved: both find none, and both save. The named search must still exist once."""
    import contextlib
    import threading
    from concurrent.futures import ThreadPoolExecutor

    both_looked = threading.Barrier(2, timeout=30)

    class LookFirst:
        """The real store, but `searches` returns only once both callers have looked: the race."""

        def __init__(self, store) -> None:
            self._store = store

        def searches(self):
            found = self._store.searches()
            both_looked.wait()
            return found

        def __getattr__(self, name: str):
            return getattr(self._store, name)

    def save(_: int):
        search = SearchService(context.backend, context.bundle.text, settings)
        with contextlib.closing(open_alert_store(settings)) as store:
            service = AlertService(LookFirst(store), search, context.bundle.name, settings)  # type: ignore[arg-type]
            return service.add_or_existing("red", min_score=0.9, name="red things")[0]

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(save, range(2))
    assert first.id == second.id
    kept = alert_service(context, settings).list()
    assert [(s["name"], s["expression"]) for s in kept] == [("red things", "red")]
    # Unnamed searches stay one per call (a page's watch belongs to whoever saved it).
    unnamed = alert_service(context, settings)
    assert unnamed.add("red", min_score=0.9).id != unnamed.add("red", min_score=0.9).id
