"""A takedown sticks even against a batch already on its way (ingest/takedown.py): the batch runner
leaves out recorded posts before any work, and looks again after its write for a takedown that came
while it was embedding. Both backends, the real batch runner and stores, the histogram bundle.

Settings overridden: the test bundle's (tests/workers/corpus.py: batches of 4, small image limits).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jointspace.backends.takedown_register import open_takedowns
from jointspace.ingest.sources import open_source
from jointspace.ingest.takedown import take_down
from jointspace.workers.distributor import InProcessDistributor
from jointspace.workers.runtime import WorkerContext, open_context

from jointspace.settings import Settings
from tests.workers.corpus import in_process_settings, make_corpus


@pytest.fixture(params=["embedded", "elasticsearch"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "embedded":
        yield in_process_settings(tmp_path / "home", es_url=None)
        return
    alias = f"posts-td{uuid.uuid4().hex[:8]}"
    url = request.getfixturevalue("es_url")
    yield in_process_settings(tmp_path / "home", es_url=url, es_index_alias=alias)
    from elasticsearch import Elasticsearch

    with Elasticsearch(url, request_timeout=30) as client:
        client.indices.delete(index=f"{alias}-*,{alias}.*", allow_no_indices=True, expand_wildcards="all")


def _take_down_while_embedding(context: WorkerContext, settings: Settings, victim: str) -> list[int]:
    """Makes the image encoder take `victim` down on its first call (the batch's pictures already
    read and checked), as a user's `jointspace delete` racing the worker would; returns a list that
    counts the pictures each call embeds."""
    encoder = context.runner.encoder
    calls: list[int] = []
    for name in ("embed_images", "image_features"):
        inner = getattr(encoder, name, None)
        if inner is None:
            continue

        def wrapped(images: Any, _inner: Any = inner) -> Any:
            if not calls:
                register = open_takedowns(settings)
                try:
                    take_down(settings, context.backend, context.dead_letters, None, register, [victim])
                finally:
                    register.close()
            calls.append(len(images))
            return _inner(images)

        setattr(encoder, name, wrapped)
    return calls


def test_a_takedown_during_the_batch_and_one_before_it_both_keep_the_post_out(
    tmp_path: Path, settings: Settings
) -> None:
    corpus = make_corpus(tmp_path, n_good=4, with_broken=False)
    posts = [item.post for item in open_source("jsonl", str(corpus.jsonl), settings)]
    early, victim = posts[0].id, posts[1].id
    register = open_takedowns(settings)
    context = open_context(settings)
    try:
        register.record([early])  # taken down before the batch: never embedded
        calls = _take_down_while_embedding(context, settings, victim)
        outcome = InProcessDistributor(settings, context).submit_batch(posts).outcome()
        assert sum(calls) == len(posts) - 1  # `early` cost nothing
        assert sorted(outcome.withheld) == sorted([early, victim])
        assert sorted(outcome.indexed) == sorted(p.id for p in posts[2:])
        assert outcome.dead == {}
        context.backend.refresh()
        assert context.backend.get(victim) is None and context.backend.get(early) is None
        assert context.backend.count() == len(posts) - 2
        # Sent again (a stream re-sending, `dead-letters retry`): still out, and nothing written.
        again = InProcessDistributor(settings, context).submit_batch(posts[:2]).outcome()
        assert (again.withheld, again.indexed) == ([early, victim], [])
        assert context.backend.get_many([early, victim], with_vector=False) == {}
    finally:
        context.close()
        register.close()


def test_a_takedown_during_the_alert_check_leaves_no_match(tmp_path: Path, settings: Settings) -> None:
    """The takedown lands while the saved searches are checked against the batch: its own removal of
    alert matches may run before the check records one. The runner looks again after the check."""
    from jointspace.query.service import SearchService

    from jointspace.alerts import open_alert_store
    from jointspace.alerts.service import AlertService

    corpus = make_corpus(tmp_path, n_good=4, with_broken=False)
    posts = [item.post for item in open_source("jsonl", str(corpus.jsonl), settings)]
    victim = posts[0].id
    context = open_context(settings)
    service = AlertService(
        open_alert_store(settings),
        SearchService(context.backend, context.bundle.text, settings),
        context.bundle.name,
        settings,
    )
    try:
        everything = service.add("red", min_score=-1.0, name="every post")  # matches all four
        listener = context.runner.listener
        assert listener is not None
        check = listener.written

        def taken_down_then_checked(docs: Any, redelivered: bool = False) -> Any:
            # The whole takedown (record, delete, forget matches) runs after the runner's look
            # after its write, and before the check records its matches, victim's among them.
            register = open_takedowns(settings)
            try:
                take_down(settings, context.backend, context.dead_letters, service.store, register, [victim])
            finally:
                register.close()
            return check(docs, redelivered)

        listener.written = taken_down_then_checked  # type: ignore[method-assign]  # the race, made certain
        outcome = InProcessDistributor(settings, context).submit_batch(posts).outcome()
        assert sorted(outcome.indexed) == sorted(p.id for p in posts[1:]) and outcome.withheld == [victim]
        assert sorted(m.post_id for m in service.matches(everything.id)) == sorted(p.id for p in posts[1:])
        context.backend.refresh()
        assert context.backend.get(victim) is None
    finally:
        service.store.close()
        context.close()
