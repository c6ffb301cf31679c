"""After a large ingest run into Elasticsearch the node merges the index into one segment (each
kNN request walks one HNSW graph per segment: docs/scale.md); small runs leave the merge policy alone.
A real node, the histogram bundle, in-process ingestion."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from jointspace.es_mappings.client import connect
from jointspace.es_mappings.manager import IndexManager
from jointspace.ingest.sources import open_source

from jointspace.app import open_ingestion
from jointspace.settings import Settings
from tests.workers.corpus import in_process_settings, make_corpus

pytestmark = pytest.mark.es


def _ingest(settings: Settings, jsonl: Path):
    ingestion = open_ingestion(settings)
    try:
        return ingestion.run(open_source("jsonl", str(jsonl), settings), progress=False)
    finally:
        ingestion.close()


def test_a_run_past_the_threshold_merges_the_index(es_url: str, tmp_path: Path) -> None:
    alias = f"test-{uuid.uuid4().hex[:12]}"
    settings = in_process_settings(tmp_path / "home", es_url=es_url, es_index_alias=alias, es_merge_after_posts=10)
    small = make_corpus(tmp_path / "small", n_good=6, name="small.jsonl")
    first = _ingest(settings, small.jsonl)
    assert first.indexed == 6 and first.merge is None  # below the threshold: no merge asked
    assert first.to_json()["merge"] is None
    large = make_corpus(tmp_path / "large", n_good=12, name="large.jsonl")
    large.jsonl.write_text(large.jsonl.read_text().replace('"id": "p', '"id": "q'))  # new posts
    client = connect(settings)
    manager = IndexManager(client, settings)
    try:
        second = _ingest(settings, large.jsonl)
        assert second.indexed == 12 and second.searchable is True
        # Two runs, each ending with a refresh: two segments at least, so a merge was started.
        assert second.merge is not None and second.merge["index"] == manager.current()
        assert second.merge["segments"] >= 2 and second.merge["task"]
        assert second.to_json()["merge"] == second.merge
        deadline = time.monotonic() + 60
        while manager.merging() and time.monotonic() < deadline:
            time.sleep(0.2)
        client.indices.refresh(index=alias)
        assert manager.segments() == 1
        assert int(client.count(index=alias)["count"]) == 18
    finally:
        for info in manager.indices():
            client.indices.delete(index=info.name, ignore_unavailable=True)
        client.close()


def test_optimize_merges_and_reports(es_url: str, tmp_path: Path) -> None:
    """`jointspace optimize --json` as a user runs it: merges to one segment, then finds nothing to do."""
    alias = f"test-{uuid.uuid4().hex[:12]}"
    settings = in_process_settings(tmp_path / "home", es_url=es_url, es_index_alias=alias, es_merge_after_posts=0)
    for part in ("a", "b"):
        corpus = make_corpus(tmp_path / part, n_good=5, name="posts.jsonl")
        corpus.jsonl.write_text(corpus.jsonl.read_text().replace('"id": "p', f'"id": "{part}'))
        assert _ingest(settings, corpus.jsonl).merge is None  # es_merge_after_posts=0: never
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    env |= {"JOINTSPACE_HOME": str(tmp_path / "home"), "JOINTSPACE_ES_URL": es_url, "JOINTSPACE_ES_INDEX_ALIAS": alias}
    client = connect(settings)
    manager = IndexManager(client, settings)
    try:
        assert manager.segments() >= 2
        done = subprocess.run(
            ["jointspace", "optimize", "--json"], capture_output=True, text=True, env=env, timeout=120
        )
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["merged"] is True and report["done"] is True and report["index"] == manager.current()
        assert report["segments_before"] >= 2 and report["segments_after"] == 1
        again = subprocess.run(["jointspace", "optimize"], capture_output=True, text=True, env=env, timeout=120)
        assert again.returncode == 0 and "nothing to merge" in again.stdout
    finally:
        for info in manager.indices():
            client.indices.delete(index=info.name, ignore_unavailable=True)
        client.close()


def test_optimize_on_the_embedded_store_has_nothing_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    env |= {"JOINTSPACE_HOME": str(tmp_path / "home")}
    done = subprocess.run(["jointspace", "optimize", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and json.loads(done.stdout)["merged"] is False
