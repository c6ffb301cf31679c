"""Fault tests with real worker processes, real Redis and real Elasticsearch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.workers.corpus import make_corpus

from .conftest import Rig, es_count, es_ids, ingest_summary, kill_worker_mid_ingest, wait_until

pytestmark = pytest.mark.slow


def test_kill_9_of_a_worker_mid_batch_loses_and_duplicates_nothing(tmp_path, rig_factory, redis_url, es_url):
    rig: Rig = rig_factory(JOINTSPACE_BROKER_URL=redis_url, JOINTSPACE_ES_URL=es_url)
    corpus = make_corpus(tmp_path / "corpus", n_good=48)
    alias = rig.env["JOINTSPACE_ES_INDEX_ALIAS"]
    producer, _ = kill_worker_mid_ingest(rig, corpus.jsonl, 48, es_url)
    second = rig.worker()
    assert producer.popen.wait(timeout=150) == 0, producer.tail() + "\n--- worker:\n" + second.tail()
    summary = ingest_summary(producer)
    assert summary["dead_lettered"] == 0
    assert summary["indexed"] + summary["unchanged"] == 48
    ids = es_ids(es_url, alias)
    assert len(ids) == 48 and set(ids) == set(corpus.good)  # every post, each exactly once


def test_broken_images_go_to_dead_letters_good_ones_all_indexed(tmp_path, rig_factory, redis_url, es_url):
    rig: Rig = rig_factory(JOINTSPACE_BROKER_URL=redis_url, JOINTSPACE_ES_URL=es_url)
    corpus = make_corpus(tmp_path / "corpus", n_good=20, with_broken=True)
    rig.worker(concurrency=2)
    producer = rig.spawn(["ingest", str(corpus.jsonl), "--json", "--quiet"], "ingest")
    assert producer.popen.wait(timeout=120) == 0, producer.tail()
    assert set(es_ids(es_url, rig.env["JOINTSPACE_ES_INDEX_ALIAS"])) == set(corpus.good)
    from jointspace.workers.dead_letters import open_dead_letters

    store = open_dead_letters(rig.settings())
    letters = {letter.key: letter for letter in store.list()}
    store.close()
    assert {k: letter.stage for k, letter in letters.items()} == corpus.broken
    assert all(letter.reason and letter.post and letter.post["id"] == k for k, letter in letters.items())
    assert set(ingest_summary(producer)["dead"]) == set(corpus.broken)
    # The producer (not the workers) recorded the pictures' folder with the index, so the API serves them.
    from elasticsearch import Elasticsearch

    with Elasticsearch(es_url, request_timeout=10) as client:
        mapping = client.indices.get_mapping(index=rig.env["JOINTSPACE_ES_INDEX_ALIAS"])
    roots = next(iter(mapping.values()))["mappings"]["_meta"]["media_roots"]
    assert str((tmp_path / "corpus" / "images").resolve()) in roots
    assert "media root recorded" in producer.log.read_text()


@pytest.fixture
def own_es_node(tmp_path):
    """A node of this test's own: the session's node must stay up for everyone else."""
    import os

    from jointspace.errors import JointspaceError
    from jointspace.services.elasticsearch_local import LocalElasticsearch

    service = LocalElasticsearch(tmp_path / "es", owner_pid=os.getpid())
    try:
        service.start(nodes=1, heap="512m", timeout_s=300)
    except JointspaceError as exc:
        service.stop(grace_s=10)
        pytest.fail(f"a dedicated Elasticsearch node could not start: {exc}", pytrace=False)
    yield service
    service.stop()


def test_elasticsearch_down_for_half_a_minute_loses_nothing(tmp_path, rig_factory, redis_url, own_es_node):
    import time

    url = own_es_node.urls[0]
    rig: Rig = rig_factory(JOINTSPACE_BROKER_URL=redis_url, JOINTSPACE_ES_URL=url)
    alias = rig.env["JOINTSPACE_ES_INDEX_ALIAS"]
    corpus = make_corpus(tmp_path / "corpus", n_good=40)
    worker = rig.worker(JOINTSPACE_TEST_EMBED_DELAY_S="0.4")
    producer = rig.spawn(["ingest", str(corpus.jsonl), "--json", "--quiet"], "ingest")
    wait_until(lambda: es_count(url, alias) >= 4, 90, "the first batch to be indexed\n" + worker.tail())
    own_es_node.kill_node(0)
    time.sleep(25)
    assert producer.popen.poll() is None, "ingest ended while Elasticsearch was down:\n" + producer.tail()
    own_es_node.restart_node(0, timeout_s=120)
    assert producer.popen.wait(timeout=120) == 0, producer.tail() + "\n--- worker:\n" + worker.tail()
    summary = ingest_summary(producer)
    assert summary["dead_lettered"] == 0 and summary["indexed"] + summary["unchanged"] == 40
    ids = es_ids(url, alias)
    assert len(ids) == 40 and set(ids) == set(corpus.good)
    assert "Retry in" in worker.log.read_text()  # the outage was met, and ridden out by retries


def test_redis_restart_under_the_stream_source_acks_only_what_is_indexed(tmp_path, rig_factory, persistent_redis):
    import redis
    from jointspace.backends import open_backend

    from tests.workers.histogram_bundle import make_bundle

    # No broker: the stream consumer embeds in-process into the embedded backend; Redis holds the stream.
    rig: Rig = rig_factory(JOINTSPACE_STREAM_REDIS_URL=persistent_redis.url)
    key, group = rig.env["JOINTSPACE_STREAM_KEY"], "jointspace-ingest"
    corpus = make_corpus(tmp_path / "corpus", n_good=60)
    posts = [json.loads(line) for line in corpus.jsonl.read_text().splitlines()]
    for post in posts:
        post["image"] = str(corpus.jsonl.parent / post["image"])
    client = redis.Redis.from_url(persistent_redis.url, decode_responses=True)
    entry_of = {}
    for post in posts[:40]:
        entry_of[client.xadd(key, {"post": json.dumps(post)})] = post["id"]
    consumer = rig.spawn(
        ["ingest", key, "--source", "redis-stream", "--consumer", "c1", "--idle-exit", "6", "--json", "--quiet"],
        "stream",
        JOINTSPACE_TEST_EMBED_DELAY_S="0.3",
    )

    def acked() -> set[str]:
        """Entries delivered to the group and no longer pending: what the consumer acknowledged."""
        info = {g["name"]: g for g in client.xinfo_groups(key)}
        if group not in info:
            return set()
        last = info[group]["last-delivered-id"]
        pending = {p["message_id"] for p in client.xpending_range(key, group, "-", "+", 1000)}
        delivered = [e for e in entry_of if tuple(map(int, e.split("-"))) <= tuple(map(int, last.split("-")))]
        return {entry_of[e] for e in delivered if e not in pending}

    wait_until(lambda: len(acked()) >= 8, 60, "the first acknowledgements\n" + consumer.tail())
    client.close()
    persistent_redis.stop()
    import time

    time.sleep(3)  # the consumer meets a dead Redis in the middle of its batches
    persistent_redis.start()
    client = redis.Redis.from_url(persistent_redis.url, decode_responses=True)
    bundle = make_bundle()
    backend = open_backend(rig.settings(), bundle.name, bundle.dim)
    try:
        # Right after the restart, before the consumer catches up: every ack must match an indexed post.
        seen = acked()
        stored = backend.get_many(sorted(seen), with_vector=False)
        assert seen and seen <= set(stored), f"acknowledged but not indexed: {sorted(seen - set(stored))}"
        for post in posts[40:]:  # producers go on writing after the restart
            entry_of[client.xadd(key, {"post": json.dumps(post)})] = post["id"]
        assert consumer.popen.wait(timeout=120) == 0, consumer.tail()
        assert client.xpending(key, group)["pending"] == 0
        assert acked() == set(corpus.good)
        backend.refresh()
        assert {d.id for d in backend.iter_documents()} == set(corpus.good)
        assert backend.count() == 60
    finally:
        backend.close()
        client.close()


def test_producer_holds_back_while_the_queue_is_full(tmp_path, rig_factory, redis_url, es_url):
    import time

    import redis

    rig: Rig = rig_factory(JOINTSPACE_BROKER_URL=redis_url, JOINTSPACE_ES_URL=es_url, JOINTSPACE_QUEUE_MAX_BATCHES="3")
    corpus = make_corpus(tmp_path / "corpus", n_good=40)  # 10 batches of 4
    producer = rig.spawn(["ingest", str(corpus.jsonl), "--no-wait", "--json", "--quiet"], "ingest")
    client = redis.Redis.from_url(redis_url)
    queue = rig.env["JOINTSPACE_CELERY_QUEUE"]
    wait_until(lambda: client.llen(queue) >= 3, 60, "the queue to fill\n" + producer.tail())
    lengths = []
    for _ in range(20):  # no worker yet: the producer must wait, not pile up batches
        lengths.append(client.llen(queue))
        time.sleep(0.1)
    assert max(lengths) == 3 and producer.popen.poll() is None
    rig.worker()
    assert producer.popen.wait(timeout=90) == 0, producer.tail()
    assert ingest_summary(producer)["enqueued"] == 40
    wait_until(lambda: es_count(es_url, rig.env["JOINTSPACE_ES_INDEX_ALIAS"]) == 40, 60, "the queue to drain")
    client.close()


def test_reindex_with_a_new_bundle_swaps_the_alias(tmp_path, rig_factory, es_url):
    from elasticsearch import Elasticsearch

    rig: Rig = rig_factory(JOINTSPACE_ES_URL=es_url)  # no broker: in-process ingest
    alias = rig.env["JOINTSPACE_ES_INDEX_ALIAS"]
    corpus = make_corpus(tmp_path / "corpus", n_good=10)
    assert rig.spawn(["ingest", str(corpus.jsonl), "--quiet"], "ingest").popen.wait(timeout=120) == 0
    bundle = tmp_path / "bundle-b"
    bundle.mkdir()
    (bundle / "histogram.json").write_text(json.dumps({"name": "histogram-b", "bins": 4}))
    with Elasticsearch(es_url) as client:
        old_index = next(iter(client.indices.get_alias(name=alias)))
    # A takedown caught half-way: recorded, its delete not yet run. The new index must not copy it.
    from jointspace.backends.takedown_register import open_takedowns

    victim = sorted(corpus.good)[0]
    register = open_takedowns(rig.settings())
    register.record([victim])
    register.close()
    reindex = rig.spawn(["reindex", "--bundle", str(bundle), "--quiet"], "reindex")
    assert reindex.popen.wait(timeout=120) == 0, reindex.tail()
    report = json.loads(reindex.log.read_text()[reindex.log.read_text().index("{") :])
    assert report["old_index"] == old_index and not report["dead_lettered"]
    assert (report["indexed"], report["withheld"]) == (9, 1)
    with Elasticsearch(es_url) as client:
        assert list(client.indices.get_alias(name=alias)) == [report["new_index"]]
        assert client.indices.exists(index=old_index)  # kept for a rollback
        meta = client.indices.get_mapping(index=report["new_index"])[report["new_index"]]["mappings"]["_meta"]
        assert (meta["model"], meta["dim"]) == ("histogram-b", 12)
    assert set(es_ids(es_url, alias)) == set(corpus.good) - {victim}


def test_reindex_of_the_embedded_store_swaps_folders(tmp_path, rig_factory):
    """The embedded default re-embeds into a staging folder and swaps it in; the old store is kept."""
    from jointspace.backends.embedded import EmbeddedBackend

    rig: Rig = rig_factory()  # no Elasticsearch, no broker: the embedded store, in-process ingest
    corpus = make_corpus(tmp_path / "corpus", n_good=10)
    assert rig.spawn(["ingest", str(corpus.jsonl), "--quiet"], "ingest").popen.wait(timeout=120) == 0
    store = rig.settings().embedded_dir
    old = EmbeddedBackend.recorded_model(store)
    assert old is not None and old[0] != "histogram-b"
    bundle = tmp_path / "bundle-b"
    bundle.mkdir()
    (bundle / "histogram.json").write_text(json.dumps({"name": "histogram-b", "bins": 4}))
    reindex = rig.spawn(["reindex", "--bundle", str(bundle), "--quiet"], "reindex")
    assert reindex.popen.wait(timeout=120) == 0, reindex.tail()
    report = json.loads(reindex.log.read_text()[reindex.log.read_text().index("{") :])
    assert report["new_index"] == str(store) and report["indexed"] == 10 and not report["dead_lettered"]
    assert EmbeddedBackend.recorded_model(store) == ("histogram-b", 12)
    retired = Path(report["old_index"])
    assert EmbeddedBackend.recorded_model(retired) == old  # kept for a rollback
    assert not store.with_name(f"{store.name}.reindex").exists()
    new = EmbeddedBackend(store, "histogram-b", 12)
    try:
        assert set(new.get_many(corpus.good, with_vector=False)) == set(corpus.good) and new.count() == 10
        # The folder the ingest recorded as a media root moved with the posts.
        assert new.media_roots() == [str((tmp_path / "corpus" / "images").resolve())]
    finally:
        new.close()
    again = rig.spawn(["reindex", "--bundle", str(bundle), "--quiet"], "reindex-again")
    assert again.popen.wait(timeout=120) != 0 and "already built by bundle 'histogram-b'" in again.tail()
    # `jointspace rollback`: the retired store is live again, and the one it replaced kept in its turn.
    back = rig.spawn(["rollback"], "rollback")
    assert back.popen.wait(timeout=120) == 0, back.tail()
    rolled = json.loads(back.log.read_text()[back.log.read_text().index("{") :])
    assert (rolled["model"], rolled["live_index"], rolled["withheld"]) == (old[0], str(store), 0)
    assert EmbeddedBackend.recorded_model(store) == old
    assert EmbeddedBackend.recorded_model(Path(rolled["retired_index"])) == ("histogram-b", 12)


def test_a_pool_child_whose_model_loads_slowly_is_not_killed_while_it_loads(tmp_path, rig_factory, redis_url, es_url):
    """Celery gives a replacement pool child 4 s to report that it is up; loading the model takes
    longer on a busy host, and each replacement was killed and replaced in a loop (seen after a
    kill -9 of one child: a minute of model loads and no batch run)."""
    import os
    import signal
    import subprocess

    rig: Rig = rig_factory(JOINTSPACE_BROKER_URL=redis_url, JOINTSPACE_ES_URL=es_url)
    alias = rig.env["JOINTSPACE_ES_INDEX_ALIAS"]
    corpus = make_corpus(tmp_path / "corpus", n_good=8)
    lines = corpus.jsonl.read_text().splitlines(keepends=True)
    halves = [tmp_path / "corpus" / "a.jsonl", tmp_path / "corpus" / "b.jsonl"]
    halves[0].write_text("".join(lines[:4]))
    halves[1].write_text("".join(lines[4:]))
    worker = rig.worker(JOINTSPACE_TEST_LOAD_DELAY_S="6")
    producer = rig.spawn(["ingest", str(halves[0]), "--json", "--quiet"], "ingest")
    assert producer.popen.wait(timeout=150) == 0, producer.tail() + "\n--- worker:\n" + worker.tail()
    children = subprocess.run(["pgrep", "-P", str(worker.popen.pid)], capture_output=True, text=True).stdout.split()
    assert len(children) == 1, children  # the one pool child (concurrency 1)
    os.kill(int(children[0]), signal.SIGKILL)
    producer = rig.spawn(["ingest", str(halves[1]), "--json", "--quiet"], "ingest")
    assert producer.popen.wait(timeout=150) == 0, producer.tail() + "\n--- worker:\n" + worker.tail()
    assert sorted(es_ids(es_url, alias)) == sorted(corpus.good)
    assert "Timed out waiting for UP message" not in worker.log.read_text()


def test_an_ingest_with_no_live_worker_says_so_and_goes_on_when_one_starts(tmp_path, rig_factory, redis_url, es_url):
    """With no worker, a run sat at "0 post" without a word for up to INGEST_WAIT_TIMEOUT_S (an hour)."""
    rig: Rig = rig_factory(JOINTSPACE_BROKER_URL=redis_url, JOINTSPACE_ES_URL=es_url)
    corpus = make_corpus(tmp_path / "corpus", n_good=4)
    producer = rig.spawn(["ingest", str(corpus.jsonl), "--json", "--quiet"], "ingest")
    wait_until(lambda: "no live worker" in producer.log.read_text(), 60, "the run to say that no worker is alive")
    assert producer.popen.poll() is None  # still waiting, not given up
    assert "jointspace worker" in producer.log.read_text()
    status = rig.spawn(["status", "--json"], "status")
    assert status.popen.wait(timeout=60) == 1, status.tail()  # `status` says it too
    workers = json.loads(status.log.read_text())["workers"]
    assert workers["ok"] is False and workers["live"] == 0 and workers["queued"] >= 1
    rig.worker()
    assert producer.popen.wait(timeout=120) == 0, producer.tail()
    assert sorted(es_ids(es_url, rig.env["JOINTSPACE_ES_INDEX_ALIAS"])) == sorted(corpus.good)
    assert producer.log.read_text().count("no live worker") == 1
    status = rig.spawn(["status"], "status")
    assert status.popen.wait(timeout=60) == 0, status.tail()
    assert "workers       1 live, 0 batches queued" in status.log.read_text()


def test_an_ingest_held_back_by_a_full_queue_with_no_worker_says_so(tmp_path, rig_factory, redis_url, es_url):
    """The same notice where a long run waits first: handing a batch to a full queue (backpressure).
    The queue's bound is 1 and batches hold one post, so four posts reach it (by default 50 batches)."""
    rig: Rig = rig_factory(JOINTSPACE_BROKER_URL=redis_url, JOINTSPACE_ES_URL=es_url, JOINTSPACE_QUEUE_MAX_BATCHES="1")
    corpus = make_corpus(tmp_path / "corpus", n_good=4)
    producer = rig.spawn(["ingest", str(corpus.jsonl), "--batch-size", "1", "--quiet"], "ingest")
    wait_until(lambda: "no live worker" in producer.log.read_text(), 60, "the held-back run to say no worker is alive")
    rig.worker()
    assert producer.popen.wait(timeout=120) == 0, producer.tail()
    assert sorted(es_ids(es_url, rig.env["JOINTSPACE_ES_INDEX_ALIAS"])) == sorted(corpus.good)
    assert producer.log.read_text().count("no live worker") == 1


def test_posts_dead_lettered_by_a_long_outage_go_back_by_themselves_once_it_answers(
    tmp_path, rig_factory, redis_url, own_es_node
):
    """An outage longer than a batch's retries dead-letters its posts; once the node answers, a
    worker sends them back to the queue by itself (workers/outage.py), and only them: the broken
    pictures stay dead letters at their own stage.

    Overridden: JOINTSPACE_TASK_MAX_RETRIES=1, so that the outage outlasts a batch's retries within
    seconds rather than the default's ~150 s; the recovery itself runs at its default pace."""
    from jointspace.workers.dead_letters import open_dead_letters

    url = own_es_node.urls[0]
    rig: Rig = rig_factory(JOINTSPACE_BROKER_URL=redis_url, JOINTSPACE_ES_URL=url, JOINTSPACE_TASK_MAX_RETRIES="1")
    alias = rig.env["JOINTSPACE_ES_INDEX_ALIAS"]
    corpus = make_corpus(tmp_path / "corpus", n_good=40, with_broken=True)
    worker = rig.worker(JOINTSPACE_TEST_EMBED_DELAY_S="0.4")
    producer = rig.spawn(["ingest", str(corpus.jsonl), "--json", "--quiet"], "ingest")
    wait_until(lambda: es_count(url, alias) >= 4, 90, "the first batch to be indexed\n" + worker.tail())
    own_es_node.kill_node(0)
    # The run goes on and ends with the node still down: what it could not write is dead-lettered.
    # It says the node is away (exit 2) after its summary, which names the stage of each dead letter.
    assert producer.popen.wait(timeout=300) == 2, producer.tail()
    answer = json.loads(producer.log.read_text().strip().splitlines()[-1])
    assert answer["error"] == "backend_unavailable", answer
    summary = answer["done"]
    outage = {key for key, why in summary["dead"].items() if why.startswith("write: backend unavailable")}
    assert outage and outage <= set(corpus.good) | set(corpus.broken), summary["dead"]

    def letters() -> dict[str, str]:
        store = open_dead_letters(rig.settings())
        try:
            return {letter.key: letter.stage for letter in store.list()}
        finally:
            store.close()

    assert any(key in corpus.good for key in letters()), letters()

    own_es_node.restart_node(0, timeout_s=240)
    wait_until(
        lambda: es_count(url, alias) == 40 and letters() == corpus.broken,
        180,
        f"the outage's posts to be indexed (dead letters now: {letters()})\n" + worker.tail(),
        poll_s=2,
    )
    ids = es_ids(url, alias)
    assert len(ids) == 40 and set(ids) == set(corpus.good)  # each exactly once
    assert "dead-lettered while it was unavailable back to the queue" in worker.log.read_text()


def test_status_counts_the_workers_of_its_own_queue_on_one_connection(tmp_path, rig_factory, persistent_redis):
    """Two homes on one Redis database, each with its own queue. `status` asked Redis on three
    connections (PING, dead letters, workers) where one does, and counted every worker beating on
    the database: the other home's worker passed for one of its own."""
    import redis

    url = persistent_redis.url
    ours: Rig = rig_factory(JOINTSPACE_BROKER_URL=url)
    theirs: Rig = rig_factory(JOINTSPACE_BROKER_URL=url)

    def status(rig: Rig) -> dict:
        done = rig.spawn(["status", "--json"], "status")
        assert done.popen.wait(timeout=60) == 0, done.tail()
        return json.loads(done.log.read_text())

    watcher = redis.Redis.from_url(url, decode_responses=True)
    try:
        before = watcher.info("stats")["total_connections_received"]
        report = status(ours)  # nothing else talks to this Redis yet
        assert watcher.info("stats")["total_connections_received"] - before == 1
        assert report["broker"]["ok"] and report["dead_letters"] == 0
        assert report["workers"] == {"ok": True, "live": 0, "queued": 0}

        worker = theirs.worker()
        wait_until(lambda: any(watcher.scan_iter(match="jointspace:worker:*")), 90, "a heartbeat\n" + worker.tail())
        assert status(theirs)["workers"]["live"] == 1
        assert status(ours)["workers"] == {"ok": True, "live": 0, "queued": 0}  # theirs takes no batch of ours
    finally:
        watcher.close()
