"""Helpers shared by the alert tests (imported by name: conftest modules are not importable):
corpora of solid colours for the histogram bundle (known geometry)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi.testclient import TestClient

from jointspace.records import Post
from jointspace.settings import Settings
from tests.workers.corpus import TEST_MAX_BYTES, TEST_MAX_PIXELS, Corpus, make_corpus
from tests.workers.histogram_bundle import FACTORY

KEY = "alerts-test-key"

CITIES = ("london", "paris", "tokyo")


def corpus_with_prefix(folder: Path, n: int, prefix: str) -> Corpus:
    """`make_corpus` with ids `<prefix>00000`… (two corpora never share an id) and cities dealt so
    that every colour appears in every city: colour i % 6 (black, blue, green, red, white, yellow),
    city (i // 6) % 3 (london, paris, tokyo)."""
    corpus = make_corpus(folder, n)
    rows = [json.loads(line) for line in corpus.jsonl.read_text().splitlines()]
    for i, row in enumerate(rows):
        row["id"] = f"{prefix}{i:05d}"
        row["city"] = CITIES[(i // 6) % 3]
    corpus.jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    corpus.good = {f"{prefix}{i:05d}": colour for i, colour in enumerate(corpus.good.values())}
    return corpus


def colour_ids(corpus: Corpus, colour: str, city: str | None = None) -> set[str]:
    """Ids of the corpus's posts of one colour (and city)."""
    return {
        post_id
        for i, (post_id, c) in enumerate(corpus.good.items())
        if c == colour and (city is None or CITIES[(i // 6) % 3] == city)
    }


def read_posts(corpus: Corpus, settings: Settings) -> list[Post]:
    from jointspace.ingest.validate import ValidationLimits, validate_post

    limits = ValidationLimits.from_settings(settings)
    return [
        validate_post(json.loads(line), corpus.jsonl.parent, limits) for line in corpus.jsonl.read_text().splitlines()
    ]


def in_process_settings(home: Path, media: Path) -> Settings:
    """The API and CLI in one process on the embedded store, no broker, the histogram bundle."""
    return Settings(
        home=home,
        media_root=media,
        api_key=KEY,
        es_url=None,
        broker_url=None,
        bundle_factory=FACTORY,
        image_max_pixels=TEST_MAX_PIXELS,
        image_max_bytes=TEST_MAX_BYTES,
        decode_threads=2,
    )


@contextmanager
def api_client(settings: Settings) -> Iterator[TestClient]:
    """A test client of the app over a container built (and closed) here."""
    from jointspace.api.app import create_app
    from jointspace.api.container import build_container

    container = build_container(settings)
    try:
        with TestClient(create_app(settings, container)) as client:
            yield client
    finally:
        container.close()
