"""The space learns from the stream (issue 17): ingest, `train --from-index`, `reindex` from the kept
features, search with the new bundle, on both backends, with the real CLI and the shipped bundle.

The pictures are coloured shapes drawn here, in two sources; `icons` is held out (leave one
source out). Before the reindex the pictures are moved away: a reindex that decoded any of them
would dead-letter it. The reindexed vectors are checked against the new bundle run on the
pictures directly (float16 features: cosine ≥ 0.99).

Settings overridden: JOINTSPACE_HOME (and the alias on Elasticsearch) for isolation.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest
from PIL import Image

from tests.encoders.conftest import COLOURS, SHAPES, draw

pytestmark = pytest.mark.slow


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["jointspace", *args], capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def write_posts(folder: Path) -> dict[str, Path]:
    """Two JSONL files (drawings: 36 posts, icons: 24); id → picture."""
    folder.mkdir(parents=True, exist_ok=True)
    pictures: dict[str, Path] = {}
    for source, size, copies in (("drawings", 96, 3), ("icons", 64, 2)):
        rows = []
        for n in range(copies):
            for colour in COLOURS:
                for shape in SHAPES:
                    pid = f"{source}-{colour}-{shape}-{n}"
                    path = folder / f"{pid}.png"
                    draw(shape, colour, size, offset=4 * n).save(path)
                    pictures[pid] = path
                    rows.append(
                        {"id": pid, "image": path.name, "caption": f"a {colour} {shape} shape", "source": source}
                    )
        (folder / f"{source}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return pictures


@pytest.fixture(params=["embedded", "elasticsearch"])
def env(request: pytest.FixtureRequest, tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    env["JOINTSPACE_HOME"] = str(tmp_path / "home")
    if request.param == "elasticsearch":
        env |= {
            "JOINTSPACE_ES_URL": request.getfixturevalue("es_url"),
            "JOINTSPACE_ES_INDEX_ALIAS": f"posts-fi{uuid.uuid4().hex[:8]}",
        }
    yield env
    if request.param == "elasticsearch":
        from elasticsearch import Elasticsearch

        with Elasticsearch(env["JOINTSPACE_ES_URL"], request_timeout=30) as client:
            alias = env["JOINTSPACE_ES_INDEX_ALIAS"]
            # `<alias>.*`: the takedown register beside the alias's own indices
            client.indices.delete(index=f"{alias}-*,{alias}.*", allow_no_indices=True, expand_wildcards="all")


def kept_ids(home: Path) -> list[str]:
    (file,) = (home / "features").glob("*.sqlite")
    db = sqlite3.connect(file)
    try:
        return [r[0] for r in db.execute("SELECT id FROM features")]
    finally:
        db.close()


def test_ingest_train_from_index_reindex_from_kept_features_and_search(env: dict[str, str], tmp_path: Path) -> None:
    from jointspace.encoders.bundle import read_manifest, shipped_bundle_dir

    shipped = shipped_bundle_dir()
    assert shipped is not None
    home = Path(env["JOINTSPACE_HOME"])
    corpus = tmp_path / "corpus"
    pictures = write_posts(corpus)
    run(env, "ingest", str(corpus / "drawings.jsonl"), "--quiet")
    run(env, "ingest", str(corpus / "icons.jsonl"), "--quiet")
    ids = kept_ids(home)
    assert len(ids) == len(set(ids)) and set(ids) == set(pictures)  # one row per ingested post

    out = home / "models" / "learnt"
    done = run(env, "train", "--from-index", "--holdout", "icons", "--epochs", "8", "--out", str(out), "--json")
    report = json.loads(done.stdout)
    assert report["trained_on"] == 36 and "icons" in report["held_out"]
    assert report["validation_posts"] + report["scored_posts"] == 24
    assert report["current_bundle"] == read_manifest(shipped)["name"]
    assert set(report["keyword_p10"]) == {"zero_training", "current_bundle", "new_head"}
    assert all(0.0 <= v <= 1.0 for v in report["keyword_p10"].values()) and report["queries"] >= 1
    manifest = read_manifest(out)
    assert manifest["image"]["config"]["backbone"] == read_manifest(shipped)["image"]["config"]["backbone"]
    assert manifest["metrics"]["from_index"]["keyword_p10_scored_half"] == report["keyword_p10"]

    # No picture may be decoded from here on: they are gone.
    shutil.move(corpus, tmp_path / "away")
    reindexed = json.loads(run(env, "reindex", "--bundle", str(out), "--quiet").stdout)
    assert reindexed["model"] == manifest["name"]
    assert (reindexed["from_kept_features"], reindexed["decoded"], reindexed["indexed"]) == (60, 0, 60)
    assert reindexed["dead_lettered"] == {}
    assert "same backbone" in reindexed["kept_features"]
    shutil.move(tmp_path / "away", corpus)

    # Search with the new bundle: the hits' scores are the new bundle's own vectors for the pictures.
    new_env = {**env, "JOINTSPACE_MODEL": str(out)}
    hits = json.loads(run(new_env, "search", "red", "-k", "20", "--json").stdout)["hits"]
    assert len(hits) >= 5 and {h["id"] for h in hits} <= set(pictures)  # near-duplicates collapse
    from jointspace.encoders.bundle import load_bundle

    from jointspace.settings import Settings

    bundle = load_bundle(out, Settings(home=home))
    order = sorted(pictures)
    direct = bundle.image.embed_images([Image.open(pictures[i]).convert("RGB") for i in order])
    query = bundle.text.embed_words(["red"])[0]
    want = dict(zip(order, (direct @ query).tolist(), strict=True))
    for hit in hits:
        assert abs(hit["score"] - want[hit["id"]]) < 0.03, (hit, want[hit["id"]])

    # And back to the shipped bundle: the same backbone, so again no picture is decoded.
    back = json.loads(run(env, "reindex", "--bundle", str(shipped), "--quiet").stdout)
    assert (back["from_kept_features"], back["decoded"]) == (60, 0)
    assert json.loads(run({**env, "JOINTSPACE_MODEL": str(shipped)}, "search", "red", "--json").stdout)["hits"]

    # The same bundle again: refused unless every picture is to be decoded and embedded anew (after
    # an upgrade that changed decoding, kept features and vectors are the old decode's).
    refused = subprocess.run(
        ["jointspace", "reindex", "--bundle", str(shipped), "--quiet"], capture_output=True, text=True, env=env
    )
    assert refused.returncode != 0 and "--decode-again" in refused.stderr, refused.stderr[-2000:]
    again = json.loads(run(env, "reindex", "--bundle", str(shipped), "--decode-again", "--quiet").stdout)
    assert again["model"] == read_manifest(shipped)["name"]
    assert (again["from_kept_features"], again["decoded"], again["indexed"]) == (0, 60, 60)
    assert again["dead_lettered"] == {} and "--decode-again" in again["kept_features"]
    assert again["old_index"] != again["new_index"]  # a new index, swapped in
    assert json.loads(run({**env, "JOINTSPACE_MODEL": str(shipped)}, "search", "red", "--json").stdout)["hits"]


def test_delete_takes_posts_out_of_the_index_their_kept_features_and_dead_letters(
    env: dict[str, str], tmp_path: Path
) -> None:
    """`jointspace delete` (the API's DELETE goes through the same `take_down`) on both backends."""
    home = Path(env["JOINTSPACE_HOME"])
    corpus = tmp_path / "corpus"
    pictures = {pid: path for pid, path in write_posts(corpus).items() if pid.startswith("icons-")}
    with (corpus / "icons.jsonl").open("a") as posts:
        posts.write(json.dumps({"id": "gone", "image": "no-such-file.png", "caption": "lost"}) + "\n")
    run(env, "ingest", str(corpus / "icons.jsonl"), "--quiet")
    first, second = sorted(pictures)[:2]
    assert {first, second} <= set(kept_ids(home))

    done = subprocess.run(
        ["jointspace", "delete", first, "gone", "never-was", first, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr[-3000:]  # an id was not in the index; the others are down
    report = json.loads(done.stdout)
    assert report == {
        "deleted": [first],
        "missing": ["gone", "never-was"],
        "features_removed": 1,
        "dead_letters_removed": 1,
        "alert_matches_removed": 0,  # no saved search here (tests/alerts/test_alert_stores.py has them)
        "recorded": 3,  # ids not in the index too: such a post may still be on its way
    }
    # stdin, one id a line: the whole list taken down, exit 0
    done = subprocess.run(
        ["jointspace", "delete", "-"], input=f"{second}\n\n", capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0 and "1 post(s) taken down" in done.stderr, done.stderr[-3000:]

    hits = json.loads(run(env, "search", "shape", "-k", "100", "--json").stdout)["hits"]
    assert {h["id"] for h in hits} == set(pictures) - {first, second}  # searchable at once
    assert set(kept_ids(home)) == set(pictures) - {first, second}
    letters = json.loads(run(env, "dead-letters", "list", "--json").stdout)
    assert [letter["key"] for letter in letters] == []

    # The takedowns stick: the same file sent again (a stream re-sending) leaves them out,
    # `gone` (a broken picture, taken down) included, and nothing of theirs is kept again.
    again = json.loads(run(env, "ingest", str(corpus / "icons.jsonl"), "--quiet", "--json").stdout)
    assert (again["withheld"], again["indexed"], again["dead_lettered"]) == (3, 0, 0), again
    assert again["unchanged"] == len(pictures) - 2
    hits = json.loads(run(env, "search", "shape", "-k", "100", "--json").stdout)["hits"]
    assert {h["id"] for h in hits} == set(pictures) - {first, second}
    assert set(kept_ids(home)) == set(pictures) - {first, second}
    listed = json.loads(run(env, "takedowns", "list", "--json").stdout)
    assert sorted(e["id"] for e in listed) == sorted([first, second, "gone", "never-was"])
    assert all(e["time"].endswith("Z") for e in listed)

    # Lifted, a post is indexed by the next ingest that sends it; an id never taken down exits 1.
    lifted = json.loads(run(env, "takedowns", "lift", first, "never-was", "--json").stdout)
    assert lifted == {"lifted": [first, "never-was"], "not_taken_down": []}
    done = subprocess.run(["jointspace", "takedowns", "lift", first], capture_output=True, text=True, env=env)
    assert done.returncode == 1 and f"not taken down: {first}" in done.stderr, done.stderr[-2000:]
    third = json.loads(run(env, "ingest", str(corpus / "icons.jsonl"), "--quiet", "--json").stdout)
    assert (third["withheld"], third["indexed"]) == (2, 1), third
    hits = json.loads(run(env, "search", "shape", "-k", "100", "--json").stdout)["hits"]
    assert {h["id"] for h in hits} == set(pictures) - {second}
