"""`jointspace search --facets ... --sort ...` end to end (the command as a subprocess on the embedded
backend of test_cli.py's home), counts and order checked against brute force over the geometry."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from jointspace.records import Post
from tests.query.cli_support import run
from tests.query.query_geometry import axis, documents

pytestmark = pytest.mark.slow


def above(query: np.ndarray, min_score: float) -> list[Post]:
    query = query / np.linalg.norm(query)
    return [d.post for d in documents() if float(d.vector @ query) >= min_score]


def test_facets_json(home: Path) -> None:
    done = run(home, "train+snow", "--min-score", "0.45", "--facets", "city,hashtags", "-k", "2", "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert {"hits", "explain", "facets", "total", "has_more"} <= set(answer) and len(answer["hits"]) == 2
    posts = above(axis("train") + axis("snow"), 0.45)
    assert answer["facets"]["matching"] == len(posts) > 10
    cities = sorted(Counter(p.city for p in posts).items(), key=lambda kv: (-kv[1], kv[0]))
    assert [(b["value"], b["count"]) for b in answer["facets"]["fields"]["city"]] == cities
    tags = sorted(Counter(t for p in posts for t in p.hashtags).items(), key=lambda kv: (-kv[1], kv[0]))
    assert [(b["value"], b["count"]) for b in answer["facets"]["fields"]["hashtags"]] == tags
    assert answer["explain"]["match"]["matching"] == len(posts)


def test_sort_newest_pages_and_text_output(home: Path) -> None:
    expected = [p.id for p in sorted(above(axis("food"), 0.55), key=lambda p: (-p.created_at.timestamp(), p.id))]
    seen: list[str] = []
    for page in range(1, 4):
        done = run(home, "food", "--min-score", "0.55", "--sort", "newest", "-k", "10", "--page", str(page), "--json")
        assert done.returncode == 0, done.stderr
        seen += [h["id"] for h in json.loads(done.stdout)["hits"]]
    assert len(expected) == 26 and seen == expected  # every page once, in order, nothing twice
    text = run(home, "food", "--min-score", "0.55", "--sort", "newest", "--facets", "city", "-k", "3")
    assert text.returncode == 0, text.stderr
    assert "facets over 26 matching posts" in text.stdout and "city      tokyo 26" in text.stdout
    assert "sorted newest first" in text.stdout


def test_bad_facet_and_sort_are_refused(home: Path) -> None:
    done = run(home, "food", "--facets", "city,colour")
    assert done.returncode == 2 and "unknown facet 'colour'" in done.stderr
    done = run(home, "food", "--sort", "oldest")
    assert done.returncode == 2 and "oldest" in done.stderr
    done = run(home, "food", "--facets", "city,hashtags", "--min-score", "nan", "--json")
    assert done.returncode == 2 and "min_score" in json.loads(done.stdout)["message"]
