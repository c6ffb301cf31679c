"""`jointspace search` end to end: a real bundle folder (GloVe-format word vectors with the
hand-set geometry), the embedded backend in a temporary JOINTSPACE_HOME, the command as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from jointspace.records import HIT_FIELDS
from tests.query.cli_support import run
from tests.query.query_geometry import axis, documents

pytestmark = pytest.mark.slow  # each test starts the command (a few seconds of imports)


def test_json_output(home: Path) -> None:
    done = run(home, "[IMG_1]+park+park+park", "-k", "3", "--city", "london", "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    # GET /search's fields (tests/api checks that answer), so a script can page as the API does.
    assert list(answer) == ["query", "mode", "k", "page", "total", "has_more", "sort", "hits", "explain"]
    assert (answer["query"], answer["mode"], answer["k"], answer["page"]) == (
        "[IMG_1]+park+park+park",
        "semantic",
        3,
        1,
    )
    assert isinstance(answer["has_more"], bool) and answer["total"] >= 3 and answer["sort"] == "relevance"
    assert [tuple(h) for h in answer["hits"]] == [HIT_FIELDS] * 3
    first = answer["hits"][0]
    assert first["id"] == "1" and first["city"] == "london" and first["hashtags"] == ["park"]
    query = documents()[0].vector + 3 * axis("park")
    query /= np.linalg.norm(query)
    assert first["score"] == pytest.approx(float(documents()[0].vector @ query), abs=1e-5)
    assert answer["explain"]["filters"]["cities"] == ["london"]
    assert answer["explain"]["nearest_words"][0]["word"] == "park"


def test_human_output_and_paging(home: Path) -> None:
    done = run(home, "food", "-k", "4", "--page", "2", "--mode", "hybrid")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["#", "score", "id"]
    assert [line.split()[0] for line in lines[1:5]] == ["5", "6", "7", "8"]
    assert "nearest words  food" in done.stdout and "[hybrid]" in done.stdout


def test_query_error_exits_2_with_a_caret(home: Path) -> None:
    done = run(home, "people+parc")
    assert done.returncode == 2
    assert done.stdout == ""
    message, expression, caret = done.stderr.rstrip("\n").splitlines()[-3:]
    assert "unknown word 'parc'" in message and "park" in message
    assert expression == "  people+parc"
    assert caret == "  " + " " * 7 + "^"


def test_a_syntax_error_is_reported_before_any_index_is_needed(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    env["JOINTSPACE_HOME"] = str(tmp_path / "empty-home")  # no index, no bundle
    run = subprocess.run(["jointspace", "search", "(beach+sun"], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stdout == ""
    assert "expected ')'" in run.stderr and "no embedded index" not in run.stderr
    lines = run.stderr.splitlines()
    assert lines[-1].index("^") == lines[-2].index("(beach+sun") + len("(beach+sun")


def test_bounds_and_min_score_come_from_the_shared_request_model(home: Path) -> None:
    too_deep = run(home, "food", "-k", "100", "--page", "6")
    assert too_deep.returncode == 2 and "would need the top 600 results" in too_deep.stderr
    zero = run(home, "food", "-k", "0")
    assert zero.returncode == 2 and "k must be between 1 and" in zero.stderr
    strict = run(home, "food", "--min-score", "0.5", "--json")
    assert strict.returncode == 0, strict.stderr
    answer = json.loads(strict.stdout)
    assert answer["explain"]["min_score"] == 0.5 and all(h["score"] >= 0.5 for h in answer["hits"])
    auto = run(home, "dog", "--min-score", "auto", "--json")
    assert auto.returncode == 0, auto.stderr
    answer = json.loads(auto.stdout)  # the one dog post stands out of the query's scores; the rest goes
    assert answer["explain"]["min_score"] == "auto" and [h["id"] for h in answer["hits"]] == ["3"]


def test_the_readme_hybrid_example_with_an_image_and_a_minus_word(home: Path) -> None:
    done = run(home, "[img:3]-dog", "--mode", "hybrid", "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["hits"] and "semantic side only" in answer["explain"]["keyword_note"]
    text = run(home, "[img:3]-dog", "--mode", "hybrid")
    assert text.returncode == 0 and "note  hybrid search ran its semantic side only" in text.stdout


def test_json_hits_carry_the_api_time_format(tmp_path: Path) -> None:
    """`search --json` and GET /search write a post's time alike: UTC with a `Z` (the CLI wrote
    `+00:00`), whatever offset or none the post came with."""
    import dataclasses
    from datetime import UTC, datetime, timedelta, timezone

    from fastapi.testclient import TestClient
    from jointspace.api.app import create_app
    from jointspace.api.container import build_container
    from jointspace.backends import open_backend

    from jointspace.settings import Settings
    from tests.query.cli_support import BUNDLE, make_home
    from tests.query.query_geometry import DIM

    home = make_home(tmp_path)
    times = {
        "1": datetime(2024, 5, 1, 14, 30, 15, 250000, tzinfo=timezone(timedelta(hours=2))),  # an offset
        "3": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    }  # "10" keeps the geometry's naive 2018-06-01: UTC, as every backend reads it
    backend = open_backend(Settings(home=home), BUNDLE, DIM)
    retimed = [
        dataclasses.replace(d, post=dataclasses.replace(d.post, created_at=times[d.id]), model=BUNDLE)
        for d in documents()
        if d.id in times
    ]
    assert not backend.upsert(retimed).errors
    backend.close()

    done = run(home, "park+beach", "-k", "20", "--json")
    assert done.returncode == 0, done.stderr
    printed = {h["id"]: h["created_at"] for h in json.loads(done.stdout)["hits"]}
    settings = Settings(home=home, model=home / "bundle", broker_url=None, es_url=None)
    container = build_container(settings)
    try:
        with TestClient(create_app(settings, container)) as client:
            answer = client.get("/search", params={"q": "park+beach", "k": 20})
    finally:
        container.close()
    assert answer.status_code == 200, answer.text
    served = {h["id"]: h["created_at"] for h in answer.json()["hits"]}
    assert printed == served
    assert (printed["1"], printed["3"], printed["10"]) == (
        "2024-05-01T12:30:15.250000Z",
        "2024-05-01T12:00:00Z",
        "2018-06-01T00:00:00Z",
    )
