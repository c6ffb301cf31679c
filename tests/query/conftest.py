"""Query tests run on every backend: the embedded store and the real Elasticsearch node."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from jointspace.query.service import SearchService

from jointspace.protocols import SearchBackend
from jointspace.settings import Settings
from tests.query.cli_support import make_home
from tests.query.query_geometry import DIM, MODEL, GeometryEncoder, documents

BACKENDS = ["embedded", pytest.param("elasticsearch", marks=pytest.mark.es)]


def _embedded(folder: Path) -> SearchBackend:
    from jointspace.backends.embedded import EmbeddedBackend

    return EmbeddedBackend(folder, MODEL, DIM)


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchBackend]:
    """The geometry collection indexed once per module in the backend named by the parameter."""
    if request.param == "embedded":
        store = _embedded(tmp_path_factory.mktemp("embedded"))
    else:
        store = _elasticsearch(request, tmp_path_factory)
    result = store.upsert(documents())
    assert not result.errors, result.errors
    store.refresh()
    yield store
    if request.param == "elasticsearch":
        store.client.indices.delete(index=f"{store.alias}-*")  # type: ignore[attr-defined]  # ES only
    store.close()


def _elasticsearch(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SearchBackend:
    from jointspace.backends.elasticsearch import ElasticsearchBackend

    es_url = request.getfixturevalue("es_url")
    # An alias (and so an index) of its own per module: tests never see each other's documents.
    module = request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")
    alias = f"query-{module}-{uuid.uuid4().hex[:8]}"
    settings = Settings(home=tmp_path_factory.mktemp("es-home"), es_url=es_url)
    return ElasticsearchBackend.open(settings, MODEL, DIM, alias=alias)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def encoder() -> GeometryEncoder:
    return GeometryEncoder()


@pytest.fixture(scope="module")
def service(backend: SearchBackend, encoder: GeometryEncoder, settings: Settings) -> SearchService:
    return SearchService(backend, encoder, settings)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The home of the `jointspace search` subprocess tests (test_cli*.py): a bundle and an index."""
    return make_home(tmp_path_factory.mktemp("cli-home"))
