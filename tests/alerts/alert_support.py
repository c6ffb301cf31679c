"""Helpers shared by the alert tests (imported by name: conftest modules are not importable):
corpora of solid colours for the histogram bundle (known geometry)."""

from __future__ import annotations

import json
from pathlib import Path

from jointspace.records import Post
from jointspace.settings import Settings
from tests.workers.corpus import Corpus, make_corpus

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
