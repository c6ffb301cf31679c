"""`jointspace status` as a user runs it: what the home holds, and exit 1 when a part is down."""

from __future__ import annotations

import json
from pathlib import Path

from tests.ingest.test_ingest_inprocess import _cli
from tests.workers.corpus import make_corpus


def test_status_counts_posts_cities_and_dead_letters_and_fails_when_the_index_is_away(tmp_path: Path) -> None:
    home = tmp_path / "home"
    empty = json.loads(_cli(["status", "--json"], home).stdout)
    assert empty["ok"] is True and empty["index"]["posts"] == 0 and "no index yet" in empty["index"]["detail"]

    corpus = make_corpus(tmp_path, n_good=7, with_broken=True)
    assert _cli(["ingest", str(corpus.jsonl), "--quiet"], home).returncode == 0
    done = _cli(["status", "--json"], home)
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["ok"] is True
    assert report["index"]["posts"] == 7 and report["index"]["cities"] == 3  # london, paris, tokyo
    assert report["index"]["model"] == report["model"]["name"]
    assert report["dead_letters"] == len(corpus.broken)
    assert sorted(c["count"] for c in report["index"]["top_cities"]) == [2, 2, 3]
    text = _cli(["status"], home).stdout
    assert "7 in 3 cities" in text and f"dead letters  {len(corpus.broken)}" in text

    away = _cli(["status", "--json"], home, JOINTSPACE_ES_URL="http://127.0.0.1:9")  # nothing listens there
    body = json.loads(away.stdout)
    assert away.returncode == 1 and body["ok"] is False and body["index"]["ok"] is False
    assert "cannot be reached" in body["index"]["detail"]


def test_status_says_how_to_use_an_index_another_bundle_built(tmp_path: Path) -> None:
    """After `reindex --bundle B`, search refuses the default bundle's queries: status names both
    ways out (point JOINTSPACE_MODEL at B, or reindex back) instead of only `jointspace reindex`."""
    from jointspace.backends import open_backend

    from jointspace.settings import Settings

    home = tmp_path / "home"
    open_backend(Settings(home=home), "bundle-b", 12).close()
    done = _cli(["status", "--json"], home)
    index = json.loads(done.stdout)["index"]
    assert done.returncode == 1 and index["ok"] is False and index["model"] == "bundle-b"
    assert "JOINTSPACE_MODEL to bundle-b's folder" in index["detail"] and "reindex --bundle" in index["detail"]
