"""The API on real backends: the embedded store and the real Elasticsearch node (`es_url`).

One model bundle per session (the trained default, else the zero-training fallback), one small
real corpus, and per backend one indexed app shared by the read-only tests. Tests that write use
posts of their own and remove what they add.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jointspace.api.app import create_app
from jointspace.api.container import build_container

from jointspace.protocols import ModelBundle
from jointspace.settings import get_settings
from tests.api.api_support import Api, api_settings, index_corpus, serve_corpus
from tests.api.browser_support import chromium_page
from tests.api.corpus import Corpus, build_api_corpus

BACKENDS = ["embedded", pytest.param("elasticsearch", marks=pytest.mark.es)]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return build_api_corpus(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="session")
def bundle() -> ModelBundle:
    """The default bundle, loaded with the default settings so that its caches (the sentence
    model's vocabulary: minutes to embed on two cores) are shared with every other run."""
    from jointspace.app import open_bundle

    loaded = open_bundle(get_settings())
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


# The browser tests' server and page (test_browser*.py): one `jointspace serve` and one chromium per module.
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, corpus: Corpus, bundle: ModelBundle) -> Iterator[str]:
    """`jointspace serve` over the corpus indexed in an embedded store; yields its base URL."""
    with serve_corpus(tmp_path_factory.mktemp("browser-home"), corpus, bundle, "browser-test-key") as url:
        yield url


@pytest.fixture(scope="module")
def page(server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:  # playwright's Page
    with chromium_page(tmp_path_factory.mktemp("chromium-profile"), server) as opened:
        yield opened
