"""`jointspace data prepare` end to end on the real tuxpaint package, with a small limit."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from jointspace.datasets.debian import unpack
from jointspace.datasets.items import split_of
from jointspace.datasets.prepare import cache_dir_of
from jointspace.datasets.prepared import load_items, read_posts_file
from PIL import Image

from jointspace.records import Post
from jointspace.settings import get_settings

DESIGN_FIELDS = {"id", "image", "caption", "hashtags", "city", "created_at", "author", "source"}
EXTRA_FIELDS = {"category", "keywords", "split", "photo"}


def check_post_line(line: dict, jsonl_dir: Path) -> None:
    """The DESIGN's JSONL post contract, plus the evaluation's extra fields."""
    assert set(line) == DESIGN_FIELDS | EXTRA_FIELDS
    assert isinstance(line["id"], str) and re.fullmatch(r"[a-z]+-[0-9a-f]{16}", line["id"])
    image = Path(line["image"])
    assert not image.is_absolute() and (jsonl_dir / image).is_file()
    assert isinstance(line["caption"], str) and line["caption"].strip()
    assert all(re.fullmatch(r"[^\W_]+(?:['_][^\W_]+)*", tag) and tag == tag.lower() for tag in line["hashtags"])
    assert line["city"] is None or isinstance(line["city"], str)
    assert datetime.fromisoformat(line["created_at"]).tzinfo is not None
    assert line["author"] is None or isinstance(line["author"], str)
    assert isinstance(line["source"], str)
    assert isinstance(line["category"], str) and line["keywords"] and all(isinstance(k, str) for k in line["keywords"])
    assert line["split"] == split_of(line["id"])
    assert isinstance(line["photo"], bool)
    post = Post.from_json(line)
    assert post.to_json()["created_at"] == line["created_at"]


def _jointspace(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JOINTSPACE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-c", "from jointspace.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _prepare(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _jointspace(home, "data", "prepare", *args)


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    """A fresh home sharing the real download cache and unpacked tuxpaint tree (160 MB .deb, 230 MB
    unpacked): fetched and unpacked once per machine, not once per test."""
    settings = get_settings()
    package = unpack("tuxpaint-stamps-default", cache_dir_of(settings.home), settings.data_dir / "packages")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "debs").symlink_to(cache_dir_of(settings.home))
    (tmp_path / "data" / "packages").mkdir(parents=True)
    (tmp_path / "data" / "packages" / package.name).symlink_to(package.root)
    return tmp_path


@pytest.mark.slow
def test_prepare_with_limit_end_to_end_then_cached(home: Path) -> None:
    first = _prepare(home, "--sources", "tuxpaint", "--limit", "12", "--size", "96")
    assert first.returncode == 0, first.stderr
    out = home / "data" / "tuxpaint"
    lines = [json.loads(x) for x in (out / "posts.jsonl").read_text().splitlines()]
    assert len(lines) == 12
    for line in lines:
        check_post_line(line, out)
        with Image.open(out / line["image"]) as image:
            assert image.mode == "RGB" and max(image.size) == 96
    assert len({line["category"] for line in lines}) > 3  # a spread, not one folder
    combined = [json.loads(x) for x in (home / "data" / "all.jsonl").read_text().splitlines()]
    assert [c["id"] for c in combined] == [line["id"] for line in lines]
    assert all((home / "data" / c["image"]).is_file() for c in combined)

    again = _prepare(home, "--sources", "tuxpaint", "--limit", "12", "--size", "96")
    assert again.returncode == 0 and "(cached)" in again.stdout

    # A damaged posts.jsonl no longer matches the marker's hash: the source is prepared again.
    (out / "posts.jsonl").write_text("")
    redo = _prepare(home, "--sources", "tuxpaint", "--limit", "12", "--size", "96")
    assert redo.returncode == 0 and "(cached)" not in redo.stdout
    assert len((out / "posts.jsonl").read_text().splitlines()) == 12


@pytest.mark.slow
def test_prepare_train_and_eval_from_the_command_line(home: Path) -> None:
    """The three commands of the joint space, as a user runs them, on 150 real tuxpaint posts."""
    prepared = _prepare(home, "--sources", "tuxpaint", "--limit", "150", "--size", "96")
    assert prepared.returncode == 0, prepared.stderr
    bundle = home / "models" / "tiny"
    # An index built by another bundle refuses the new one's queries: train says how to move it over.
    from jointspace.backends.embedded import EmbeddedBackend

    EmbeddedBackend(home / "embedded", "an-older-bundle", 384).close()
    train = _jointspace(
        home, "train", "--sources", "tuxpaint", "--val-sources", "tuxpaint", "--epochs", "3", "--out", str(bundle)
    )
    assert train.returncode == 0, train.stderr
    assert "now the default bundle" in train.stdout and "held-out val split of the training sources" in train.stdout
    assert f"holds vectors of bundle 'an-older-bundle': `jointspace reindex --bundle {bundle}`" in train.stdout
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["loss"] == "ridge" and manifest["training"]["sources"] == ["tuxpaint"]

    report_dir = home / "report"
    evaluated = _jointspace(
        home, "eval", "--sources", "tuxpaint", "--val-sources", "tuxpaint", "--out", str(report_dir)
    )
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads((report_dir / "report.json").read_text())
    assert [r["kind"] for r in report["configurations"]] == ["random", "zeroshot", "zeroshot", "bundle"]
    assert report["configurations"][3]["bundle"] == str(bundle)  # `latest` now points at the new bundle
    assert report["galleries"]["tuxpaint"]["queries"]["keyword"] > 0
    assert "| zero-training (minilm) |" in evaluated.stdout and "paired by query" in evaluated.stdout
    assert "| zero-training (minilm, WordNet prior) |" in evaluated.stdout
    # Leave-one-source-out needs another source to train on: a clear error, before any training.
    loso = _jointspace(home, "eval", "--loso", "--out", str(home / "loso"))
    assert loso.returncode != 0 and "at least two prepared sources" in loso.stderr
    unknown = _jointspace(home, "eval", "--holdout-source", "nosuch", "--out", str(home / "loso"))
    assert unknown.returncode != 0 and "nosuch" in unknown.stderr


@pytest.mark.slow
def test_import_own_posts_then_train_and_eval_on_them(home: Path, tmp_path: Path) -> None:
    """An InstaCities1M folder and a JSONL file become sources that train and eval read like the project's own."""
    from jointspace.datasets.fixtures import build_instacities_fixture

    insta = build_instacities_fixture(
        tmp_path / "insta", n_per_city=40, cities=("london", "sydney", "tokyo"), settings=get_settings()
    )
    done = _jointspace(home, "data", "import", str(tmp_path / "insta"), "--name", "insta", "--json", "-q")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["imported"] == 120 and sum(report["splits"].values()) == 120 and not report["skipped"]
    assert report["splits"]["train"] > 80 and report["splits"]["test"] > 0
    items = load_items(home / "data", sources=["insta"])
    assert {it.category for it in items} == {"london", "sydney", "tokyo"}
    by_image = {Path(it.post.image).resolve(): it for it in items}
    for post in insta[:5]:
        item = by_image[post.image.resolve()]  # images stay where they are
        assert post.city in item.keywords and item.split == split_of(item.id)

    # JSONL with a malformed line, a duplicate and a missing picture: each refused with its reason.
    good = [
        {"id": f"mine-{i}", "image": str(p.image), "caption": f"my post #{p.city}"} for i, p in enumerate(insta[:3])
    ]
    lines = [json.dumps(x) for x in good] + [
        "{not json",
        json.dumps(good[0]),
        json.dumps({"id": "gone", "image": str(tmp_path / "nope.jpg")}),
    ]
    (tmp_path / "mine.jsonl").write_text("\n".join(lines) + "\n")
    mine = _jointspace(home, "data", "import", str(tmp_path / "mine.jsonl"), "--name", "mine", "--json", "-q")
    assert mine.returncode == 0, mine.stderr
    refused = json.loads(mine.stdout)
    assert refused["imported"] == 3 and len(refused["skipped"]) == 3
    reasons = " | ".join(refused["skipped"].values())
    assert "duplicate id 'mine-0'" in reasons and "nope.jpg" in reasons
    taken = _jointspace(home, "data", "import", str(tmp_path / "mine.jsonl"), "--name", "photos")
    assert taken.returncode != 0 and "taken" in taken.stderr

    bundle = home / "models" / "insta"
    train = _jointspace(
        home, "train", "--sources", "insta", "--val-sources", "insta", "--epochs", "2", "--out", str(bundle)
    )
    assert train.returncode == 0, train.stderr
    assert json.loads((bundle / "manifest.json").read_text())["training"]["sources"] == ["insta"]
    evaluated = _jointspace(home, "eval", "--sources", "insta", "--val-sources", "insta", "--out", str(home / "r"))
    assert evaluated.returncode == 0, evaluated.stderr
    galleries = json.loads((home / "r" / "report.json").read_text())["galleries"]
    assert galleries["insta"]["split"].startswith("test") and galleries["insta"]["images"] == report["splits"]["test"]


def test_unknown_source_is_a_clear_error(home: Path) -> None:
    result = _prepare(home, "--sources", "flickr")
    assert result.returncode != 0
    assert "unknown source" in result.stderr and "tuxpaint" in result.stderr


def test_loader_gives_absolute_images_and_filters_splits(small_corpus: Path) -> None:
    corpus_dir = small_corpus.parent
    items = load_items(corpus_dir, sources=["tuxpaint"])
    assert len(items) == 24
    assert all(Path(i.post.image).is_absolute() and Path(i.post.image).is_file() for i in items)
    train = load_items(corpus_dir, split="train")
    assert {i.split for i in train} == {"train"} and 0 < len(train) < 24
    both = load_items(corpus_dir, split=("val", "test"))
    assert len(train) + len(both) == 24
    assert [i.id for i in read_posts_file(small_corpus)] == [i.id for i in items]
    for raw in small_corpus.read_text().splitlines():
        check_post_line(json.loads(raw), corpus_dir)


def test_loader_names_the_command_for_a_missing_source(tmp_path: Path) -> None:
    from jointspace.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="jointspace data prepare --sources gcompris"):
        load_items(tmp_path, sources=["gcompris"])
