"""Kept image features (issue 17, "the space learns from the stream") under a worker killed with
kill -9 in the middle of a batch: real Celery worker processes, real Redis, real Elasticsearch.

The encoder is the histogram test bundle split into "backbone" (raw bin counts) and "head" (unit
length), so every kept row can be checked against the picture it came from."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from PIL import Image

from tests.workers.corpus import make_corpus

from .conftest import Rig, es_ids, ingest_summary, kill_worker_mid_ingest
from .histogram_bundle import COLOURS, SplitHistogramImageEncoder

pytestmark = pytest.mark.slow


def _kept_rows(rig: Rig) -> list[tuple[str, bytes]]:
    files = list((rig.home / "features").glob("*.sqlite"))
    assert len(files) == 1, files  # one store, for the one backbone
    db = sqlite3.connect(files[0])
    try:
        return db.execute("SELECT id, data FROM features").fetchall()
    finally:
        db.close()


def test_kill_9_mid_batch_keeps_every_posts_features_once(tmp_path, rig_factory, redis_url, es_url):
    rig: Rig = rig_factory(JOINTSPACE_BROKER_URL=redis_url, JOINTSPACE_ES_URL=es_url, JOINTSPACE_TEST_SPLIT_ENCODER="1")
    corpus = make_corpus(tmp_path / "corpus", n_good=48)
    alias = rig.env["JOINTSPACE_ES_INDEX_ALIAS"]
    producer, _ = kill_worker_mid_ingest(rig, corpus.jsonl, 48, es_url)
    second = rig.worker()
    assert producer.popen.wait(timeout=150) == 0, producer.tail() + "\n--- worker:\n" + second.tail()
    assert ingest_summary(producer)["dead_lettered"] == 0
    indexed = set(es_ids(es_url, alias))
    assert indexed == set(corpus.good)

    rows = _kept_rows(rig)
    ids = [pid for pid, _ in rows]
    assert len(ids) == len(set(ids)) == 48  # nothing duplicated
    assert set(ids) == indexed  # nothing lost: every indexed post has its features
    encoder = SplitHistogramImageEncoder("check", 8)
    for pid, data in rows:  # each row whole, and the features of its own picture
        kept = np.frombuffer(data, dtype=np.float16).astype(np.float32)
        want = encoder.image_features([Image.new("RGB", (64, 48), COLOURS[corpus.good[pid]])])[0]
        assert np.allclose(kept, want, rtol=1e-2, atol=1e-2), pid
