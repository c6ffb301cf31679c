"""Scale-out on the project's own 3-node cluster: ingestion through real Celery workers into an index
of 3 shards and 1 replica; the same top-10 as a single node holding the same posts; and a node
killed with SIGKILL in the middle of a second run loses no acknowledged post while search answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import Rig, ingest_summary, wait_until

pytestmark = pytest.mark.slow

CITIES = ("london", "paris", "tokyo", "sydney", "lagos")


def _noise_corpus(folder: Path, start: int, n: int, name: str) -> tuple[Path, list[str]]:
    """`n` posts whose pictures are random mixtures of colours: every colour histogram (the test
    encoder's vector) differs, so a top-10 has no ties to blur a comparison."""
    rng = np.random.default_rng(start)
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    lines, ids = [], []
    for i in range(start, start + n):
        post_id = f"c{i:05d}"
        palette = rng.integers(0, 256, (rng.integers(2, 6), 3))
        weights = rng.dirichlet(np.ones(len(palette)))
        pixels = palette[rng.choice(len(palette), size=24 * 24, p=weights)].reshape(24, 24, 3).astype(np.uint8)
        Image.fromarray(pixels).save(images / f"{post_id}.png")
        lines.append(
            json.dumps(
                {
                    "id": post_id,
                    "image": f"images/{post_id}.png",
                    "caption": f"mixture {i}",
                    "city": CITIES[i % len(CITIES)],
                    "created_at": "2024-05-01T12:00:00",
                }
            )
        )
        ids.append(post_id)
    jsonl = folder / name
    jsonl.write_text("\n".join(lines) + "\n")
    return jsonl, ids


def _backend(rig: Rig):
    from jointspace.backends import open_backend

    from tests.workers.histogram_bundle import make_bundle

    bundle = make_bundle()
    return open_backend(rig.settings(), bundle.name, bundle.dim, read_only=True)


def _all_ids(backend) -> set[str]:
    return {doc.post.id for doc in backend.iter_documents()}


def _index_layout(url: str, alias: str) -> tuple[int, int, set[str]]:
    """(primaries, replicas, nodes holding a started copy) of the index behind `alias`."""
    from elasticsearch import Elasticsearch

    with Elasticsearch(url, request_timeout=30) as client:
        shards = client.cat.shards(index=alias, format="json", h="shard,prirep,state,node")
    started = [s for s in shards if s["state"] == "STARTED"]
    return (
        sum(s["prirep"] == "p" for s in started),
        sum(s["prirep"] == "r" for s in started),
        {s["node"] for s in started},
    )


def test_three_node_cluster_matches_one_node_and_survives_a_kill_9(
    tmp_path, rig_factory, redis_url, es_url, es_cluster
):
    cluster_url = ",".join(es_cluster.urls)
    first_jsonl, first_ids = _noise_corpus(tmp_path / "corpus", 0, 120, "first.jsonl")
    second_jsonl, second_ids = _noise_corpus(tmp_path / "corpus", 1000, 120, "second.jsonl")

    # The cluster: 3 shards, 1 replica, fed by two worker processes through Redis.
    rig: Rig = rig_factory(
        JOINTSPACE_BROKER_URL=redis_url,
        JOINTSPACE_ES_URL=cluster_url,
        JOINTSPACE_ES_SHARDS="3",
        JOINTSPACE_ES_REPLICAS="1",
    )
    alias = rig.env["JOINTSPACE_ES_INDEX_ALIAS"]
    rig.worker()
    rig.worker()
    producer = rig.spawn(["ingest", str(first_jsonl), "--json", "--quiet"], "ingest-first")
    assert producer.popen.wait(timeout=180) == 0, producer.tail()
    summary = ingest_summary(producer)
    assert summary["indexed"] == 120 and summary["dead_lettered"] == 0 and summary["searchable"] is True
    primaries, replicas, nodes = _index_layout(es_cluster.urls[0], alias)
    assert (primaries, replicas, len(nodes)) == (3, 3, 3)

    # The same posts on the session's single node, ingested in-process (no broker).
    single_rig: Rig = rig_factory(JOINTSPACE_ES_URL=es_url)
    single = single_rig.spawn(["ingest", str(first_jsonl), "--json", "--quiet"], "ingest-single")
    assert single.popen.wait(timeout=180) == 0, single.tail()

    cluster, one = _backend(rig), _backend(single_rig)
    try:
        assert _all_ids(cluster) == _all_ids(one) == set(first_ids)
        stored = one.get_many(first_ids[:15])
        rng = np.random.default_rng(5)
        queries = [stored[i].vector for i in first_ids[:15]] + list(rng.standard_normal((15, one.dim)))
        from jointspace.records import Filters

        for q in queries:
            q = np.asarray(q, dtype=np.float32) / np.linalg.norm(q)
            for filters in (None, Filters(cities=("paris",))):
                got = cluster.knn(q, 10, filters=filters)
                want = one.knn(q, 10, filters=filters)
                assert [h.post.id for h in got] == [h.post.id for h in want]
                assert np.allclose([h.score for h in got], [h.score for h in want], atol=1e-4)
                if filters:
                    assert all(h.post.city == "paris" for h in got) and len(got) == 10

        # Second run: a node is killed with SIGKILL while the workers are writing.
        slow = {"JOINTSPACE_TEST_EMBED_DELAY_S": "0.4"}
        for proc in list(rig.procs):
            if "worker" in proc.log.name:
                proc.stop()
        rig.worker(**slow)
        rig.worker(**slow)
        producer = rig.spawn(["ingest", str(second_jsonl), "--json", "--quiet"], "ingest-second")
        wait_until(lambda: cluster.count() >= 130, 120, "the second run to start writing")
        es_cluster.kill_node(1)
        assert cluster.count() < 240, "the second run ended before the kill; slow the workers further"
        answered = cluster.knn(queries[0], 10)  # search keeps answering with a node gone
        assert len(answered) == 10
        assert producer.popen.wait(timeout=300) == 0, producer.tail() + "\n--- workers:\n" + rig.procs[-2].tail()
        summary = ingest_summary(producer)
        assert summary["dead_lettered"] == 0 and summary["indexed"] + summary["unchanged"] == 120
        cluster.refresh()
        ids = [doc.post.id for doc in cluster.iter_documents()]
        assert len(ids) == 240 and set(ids) == set(first_ids) | set(second_ids)  # nothing lost, nothing twice
        assert cluster.count() == 240
        assert len(cluster.knn(queries[1], 10)) == 10
    finally:
        cluster.close()
        one.close()
