"""Elasticsearch's approximate kNN against exact search: parity on 2,000 vectors, recall@10 on 20,000.

Figures go to the terminal summary and to test-artifacts/recall.json whether or not output is captured.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from jointspace.backends.elasticsearch import ElasticsearchBackend
from jointspace.backends.embedded import EmbeddedBackend

from jointspace.records import Document, Filters, Post
from tests.backends.backend_corpus import BIG_CITIES, MODEL, unit_vectors
from tests.backends.backend_support import RECALL_FIGURES, drop_alias_indices, es_settings

pytestmark = pytest.mark.es
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
RECALL_DIM = 384
RECALL_DOCS = 20_000
QUERIES = 50
K = 10


def random_posts(vectors: np.ndarray, cities: np.ndarray) -> list[Document]:
    return [
        Document(post=Post(id=str(i), image=f"/m/{i}.jpg", city=str(cities[i])), vector=v, model=MODEL)
        for i, v in enumerate(vectors)
    ]


def test_top10_equals_exact_search_when_all_docs_are_candidates(es_url: str, tmp_path: Path) -> None:
    vectors = unit_vectors(2_000, RECALL_DIM, seed=21)
    cities = np.array(BIG_CITIES)[np.arange(2_000) % 5]
    docs = random_posts(vectors, cities)
    exact = EmbeddedBackend(tmp_path / "embedded", MODEL, RECALL_DIM)
    approx = ElasticsearchBackend.open(es_settings(es_url, tmp_path, es_shards=2), MODEL, RECALL_DIM)
    try:
        exact.upsert(docs)
        approx.upsert(docs)
        approx.refresh()
        for query in unit_vectors(20, RECALL_DIM, seed=22):
            for filters in (None, Filters(cities=("rome",))):
                want = exact.knn(query, K, filters=filters)
                got = approx.knn(query, K, num_candidates=2_000, filters=filters)
                assert [h.id for h in got] == [h.id for h in want]
                np.testing.assert_allclose([h.score for h in got], [h.score for h in want], atol=1e-5)
    finally:
        exact.close()
        drop_alias_indices(approx)


@pytest.fixture(scope="module")
def recall_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """20,000 uniform random unit vectors (the hardest case for HNSW), a city each, 50 queries."""
    vectors = unit_vectors(RECALL_DOCS, RECALL_DIM, seed=31)
    cities = np.array(BIG_CITIES)[np.random.default_rng(32).integers(0, 5, RECALL_DOCS)]
    return vectors, cities, unit_vectors(QUERIES, RECALL_DIM, seed=33)


@pytest.fixture(scope="module", autouse=True)
def write_recall_artifact() -> Iterator[None]:
    yield
    figures = [row for row in RECALL_FIGURES if row.get("docs") == RECALL_DOCS]
    if figures:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "recall.json").write_text(json.dumps(figures, indent=2) + "\n")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("index_options", "min_num_candidates"),
    # The default index (bbq_hnsw) and int8_hnsw at the default candidates; float `hnsw` has no
    # rescoring to make up for a narrow pool, and docs/backends.md tells its users to raise the
    # floor to 500, as here.
    [("bbq_hnsw", None), ("int8_hnsw", None), ("hnsw", 500)],
)
def test_recall_at_default_num_candidates(
    index_options: str,
    min_num_candidates: int | None,
    es_url: str,
    tmp_path: Path,
    recall_data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    vectors, cities, queries = recall_data
    extra = {"min_num_candidates": min_num_candidates} if min_num_candidates else {}
    settings = es_settings(es_url, tmp_path, es_shards=2, es_index_options=index_options, **extra)
    backend = ElasticsearchBackend.open(settings, MODEL, RECALL_DIM)
    try:
        started = time.perf_counter()
        result = backend.upsert(random_posts(vectors, cities), chunk_size=2_500)
        backend.refresh()
        index_seconds = time.perf_counter() - started
        assert not result.errors and backend.count() == RECALL_DOCS
        for label, filters, keep in (
            ("none", None, np.ones(RECALL_DOCS, bool)),
            ("one city in five", Filters(cities=("paris",)), cities == "paris"),
        ):
            recalls, latencies = [], []
            for query in queries:
                exact = set(np.flatnonzero(keep)[np.argsort(-(vectors[keep] @ query))[:K]].astype(str))
                started = time.perf_counter()
                hits = backend.knn(query, K, filters=filters)
                latencies.append(time.perf_counter() - started)
                recalls.append(len(exact & {h.id for h in hits}) / K)
            figures = {
                "docs": RECALL_DOCS,
                "dim": RECALL_DIM,
                "shards": 2,
                "index_options": index_options,
                "rescore_oversample": backend._rescore,
                "filter": label,
                "num_candidates": max(K * settings.num_candidates_factor, settings.min_num_candidates),
                "recall_at_10": round(float(np.mean(recalls)), 4),
                "p50_ms": round(1000 * float(np.median(latencies)), 1),
                "bulk_index_s": round(index_seconds, 1),
            }
            RECALL_FIGURES.append(figures)
            print(json.dumps(figures))
            assert figures["recall_at_10"] >= 0.95, figures
    finally:
        drop_alias_indices(backend)
