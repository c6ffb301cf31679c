"""The `backend` fixture: every behaviour test runs on the embedded store and on the real Elasticsearch node.

`es_url` comes from tests/conftest.py (one genuine node per session). Each test gets its own alias,
so its own fresh index, dropped afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from jointspace.backends.elasticsearch import ElasticsearchBackend
from jointspace.backends.embedded import EmbeddedBackend

from jointspace.protocols import SearchBackend
from tests.backends.backend_corpus import DIM, MODEL, city_corpus
from tests.backends.backend_support import RECALL_FIGURES, drop_alias_indices, es_settings

# "embedded-hnsw": the embedded store walking its HNSW graph for every kNN (ann_min_rows=1 instead of
# the default 50,000, so that the suite's small corpora exercise the graph path).
BACKENDS = ["embedded", "embedded-hnsw", pytest.param("elasticsearch", marks=pytest.mark.es)]


def open_test_backend(kind: str, request: pytest.FixtureRequest, folder: Path, dim: int = DIM) -> SearchBackend:
    if kind == "embedded":
        return EmbeddedBackend(folder / "embedded", MODEL, dim)
    if kind == "embedded-hnsw":
        return EmbeddedBackend(folder / "embedded", MODEL, dim, ann_min_rows=1)
    settings = es_settings(request.getfixturevalue("es_url"), folder)
    return ElasticsearchBackend.open(settings, MODEL, dim)


def close_test_backend(backend: SearchBackend) -> None:
    if isinstance(backend, ElasticsearchBackend):
        drop_alias_indices(backend)
    else:
        backend.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchBackend]:
    """A fresh, empty backend for MODEL / DIM."""
    opened = open_test_backend(request.param, request, tmp_path)
    yield opened
    close_test_backend(opened)


@pytest.fixture(scope="module", params=BACKENDS)
def city_backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchBackend]:
    """A backend holding city_corpus() (2,000 posts), shared read-only by a module's tests."""
    opened = open_test_backend(request.param, request, tmp_path_factory.mktemp("city"))
    result = opened.upsert(city_corpus())
    assert not result.errors
    opened.refresh()
    yield opened
    close_test_backend(opened)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Recall figures show whether or not pytest captured output (-s not needed)."""
    if not RECALL_FIGURES:
        return
    terminalreporter.section("Elasticsearch recall@10 against exact search")
    for row in RECALL_FIGURES:
        terminalreporter.write_line(json.dumps(row))
