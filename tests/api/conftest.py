"""The API on real backends: the embedded store and the real Elasticsearch node (`es_url`).

One model bundle per session (the trained default, else the zero-training fallback), one small
real corpus, and per backend one indexed app shared by the read-only tests. Tests that write use
posts of their own and remove what they add.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from api_support import Api, api_settings, index_corpus  # noqa: E402
from corpus import Corpus, build_api_corpus  # noqa: E402
from jointspace.api.app import create_app  # noqa: E402
from jointspace.api.container import build_container  # noqa: E402

from jointspace.protocols import ModelBundle  # noqa: E402
from jointspace.settings import get_settings  # noqa: E402

BACKENDS = ["embedded", pytest.param("elasticsearch", marks=pytest.mark.es)]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return build_api_corpus(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="session")
def bundle() -> ModelBundle:
    """The default bundle, loaded with the default settings so that its caches (the sentence
    model's vocabulary: minutes to embed on two cores) are shared with every other run."""
    from jointspace.workers.runtime import load_model_bundle

    loaded = load_model_bundle(get_settings())
    loaded.text.nearest_words(loaded.text.embed_words(["dog"])[0], 1)  # build the vocabulary now, once
    return loaded


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, corpus: Corpus, bundle: ModelBundle
) -> Iterator[Api]:
    """The app over the indexed corpus, on the backend named by the parameter."""
    es_url = request.getfixturevalue("es_url") if request.param == "elasticsearch" else None
    # An index of its own per test module on the shared node: modules never see each other's writes.
    alias = "api-" + request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")
    settings = api_settings(tmp_path_factory.mktemp("home"), corpus, es_url, alias)
    container = build_container(settings, bundle)
    try:
        index_corpus(container, corpus)
        with TestClient(create_app(settings, container)) as client:
            yield Api(client, container, settings, corpus, request.param)
    finally:
        container.close()
