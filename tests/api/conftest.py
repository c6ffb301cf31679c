"""The API on real backends: the embedded store and the real Elasticsearch node (`es_url`).

One model bundle per session (the trained default, else the zero-training fallback), one small
real corpus, and per backend one indexed app shared by the read-only tests. Tests that write use
posts of their own and remove what they add.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jointspace.api.app import create_app
from jointspace.api.container import build_container

from jointspace.protocols import ModelBundle
from jointspace.settings import get_settings
from tests.api.api_support import Api, api_settings, index_corpus
from tests.api.browser_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.api.corpus import Corpus, build_api_corpus
from tests.api.served import serve, share_text_cache

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
    home = tmp_path_factory.mktemp("browser-home")
    settings = api_settings(home, corpus)
    container = build_container(settings, bundle)
    try:
        index_corpus(container, corpus)
    finally:
        container.close()
    share_text_cache(home, bundle.settings.home)
    with serve(
        home,
        {
            "JOINTSPACE_MEDIA_ROOT": str(corpus.root),
            "JOINTSPACE_MODEL": str(bundle.path),
            "JOINTSPACE_API_KEY": "browser-test-key",
        },
    ) as url:
        yield url


@pytest.fixture(scope="module")
def page(server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:  # playwright's Page
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/setup.sh)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(60_000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server)
        yield page
        context.close()
        assert not errors, f"JavaScript errors on the page: {errors}"
