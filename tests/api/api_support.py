"""Helpers shared by the API tests (imported by name: conftest modules are not importable)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient
from jointspace.api.container import ApiContainer, build_container

from jointspace.protocols import ModelBundle
from jointspace.records import Post
from jointspace.settings import Settings
from tests.api.corpus import Corpus
from tests.api.served import serve

API_KEY = "test-key-0123456789"


@dataclass
class Api:
    client: TestClient
    container: ApiContainer
    settings: Settings
    corpus: Corpus
    backend_name: str

    @property
    def write_headers(self) -> dict[str, str]:
        return {"X-API-Key": API_KEY}


def api_settings(
    home: Path, corpus: Corpus, es_url: str | None = None, alias: str = "api-test-posts", **extra: object
) -> Settings:
    return Settings(
        home=home,
        media_root=corpus.root,
        api_key=API_KEY,
        es_url=es_url,
        es_index_alias=alias,
        broker_url=None,
        **extra,
    )


def corpus_posts(corpus: Corpus, settings: Settings) -> list[Post]:
    from jointspace.ingest.validate import ValidationLimits, validate_post

    limits = ValidationLimits.from_settings(settings)
    return [validate_post(raw, corpus.root, limits) for raw in corpus.posts]


def index_corpus(container: ApiContainer, corpus: Corpus) -> None:
    posts = corpus_posts(corpus, container.settings)
    outcome = container.submitter.submit_batch(posts).outcome()
    assert not outcome.dead, outcome.dead
    container.backend.refresh()
    assert container.backend.count() == len(posts)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@contextmanager
def serve_corpus(home: Path, corpus: Corpus, bundle: ModelBundle, api_key: str) -> Iterator[str]:
    """`jointspace serve` (served.serve) over `corpus` indexed into an embedded store under `home`,
    with `bundle` and `api_key`; yields its base URL."""
    container = build_container(api_settings(home, corpus), bundle)
    try:
        index_corpus(container, corpus)
    finally:
        container.close()
    extra = {
        "JOINTSPACE_MEDIA_ROOT": str(corpus.root),
        "JOINTSPACE_MODEL": str(bundle.path),
        "JOINTSPACE_API_KEY": api_key,
    }
    with serve(home, extra) as url:
        yield url
