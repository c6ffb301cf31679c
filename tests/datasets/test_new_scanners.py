"""The scanners of the sources added for breadth (issue 13), each on its real package (fetched once
per machine and unpacked once, like tests/datasets/test_scanners.py), and the cross-source
de-duplication through `jointspace data prepare` on small limits."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import pytest
from jointspace.datasets.dedup import BlankPicture, Signature, find_duplicates, signature_of
from jointspace.datasets.items import RawItem
from jointspace.datasets.prepare import cache_dir_of, unpack
from jointspace.datasets.prepared import load_items
from jointspace.datasets.scanners import get_source
from jointspace.datasets.text import ENGLISH_STOP_WORDS, NOISE_WORDS
from PIL import Image, ImageDraw

from jointspace.settings import get_settings

SLICE = 300  # items checked per source: enough to meet every kind of entry, little time


def _roots(name: str) -> list[Path]:
    settings = get_settings()
    return [
        unpack(p, cache_dir_of(settings.home), settings.data_dir / "packages").root for p in get_source(name).packages
    ]


def _scan(name: str) -> Iterator[RawItem]:
    return get_source(name).scan(*_roots(name))


def _check_words(items: list[RawItem], source: str) -> None:
    """Every item has a picture and label words that are words: no numbers, codes or noise."""
    assert items and len({i.key for i in items}) == len(items)
    for item in items:
        assert item.source == source and item.caption.strip() and item.keywords
        assert item.image.path is not None and item.image.path.is_file()
        for word in item.keywords:
            assert not word.isdigit() and word not in ENGLISH_STOP_WORDS and word not in NOISE_WORDS, (item, word)
            assert re.fullmatch(r"[^\W_]+(?:'[^\W_]+)*", word), (item.key, word)
        assert all(re.fullmatch(r"[^\W_]+(?:['_][^\W_]+)*", t) for t in item.hashtags), item.hashtags


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, key, words",
    [
        ("openmoji", "1F431", {"cat", "face"}),
        ("twemoji", "1F431", {"cat", "face"}),
        ("notoemoji", "1F431", {"cat", "face"}),
        ("emojione", "cat", {"cat", "face"}),
        ("mdi", "airplane", {"airplane"}),
        ("tabler", "bike", {"bike"}),
        ("flags", "fr.svg", {"flag", "france"}),
    ],
)
def test_drawn_sources_have_named_pictures(name: str, key: str, words: set[str]) -> None:
    items = list(_scan(name))
    _check_words(list(islice(items, SLICE)), name)
    assert len(items) > (200 if name == "flags" else 1000)
    item = next(i for i in items if i.key == key)
    assert words <= set(item.keywords) and not item.photo
    assert not any(i.photo for i in items)
    if name in ("openmoji", "emojione"):  # skin-tone copies of the same picture are left out
        assert not any("tone" in i.caption.lower() and "skin" in i.caption.lower() for i in items)


@pytest.mark.slow
def test_stellarium_telescope_photos_and_constellation_drawings() -> None:
    items = list(_scan("stellarium"))
    _check_words(items[:SLICE] + items[-SLICE:], "stellarium")
    photos = [i for i in items if i.photo]
    drawings = [i for i in items if not i.photo]
    assert len(photos) > 500 and all(i.category == "nebulae" for i in photos)
    assert len(drawings) > 400 and all(i.category.startswith("constellations/") for i in drawings)
    orion = next(i for i in photos if i.key == "nebulae/m42.png")
    assert {"orion", "nebula", "space"} <= set(orion.keywords)
    america = next(i for i in photos if i.key == "nebulae/n7000.png")  # NGC 7000 in names.dat
    assert {"north", "america", "nebula"} <= set(america.keywords)
    bear = next(i for i in drawings if i.key == "skycultures/western/ursa-major.png")
    assert {"ursa", "major", "bear", "constellation"} <= set(bear.keywords)


@pytest.mark.slow
def test_wallpapers_photos_are_the_listed_ones() -> None:
    items = list(_scan("wallpapers"))
    _check_words(items, "wallpapers")
    assert len(items) >= 50 and sum(i.photo for i in items) == 23
    ladybird = next(i for i in items if i.key == "mate/nature/LadyBird.jpg")
    assert ladybird.photo and {"ladybird", "flowers"} <= set(ladybird.keywords)
    assert not next(i for i in items if i.key == "mate/abstract/Waves.png").photo
    assert not any(re.search(r"_\d+x\d+\.", i.key) for i in items)  # one copy of each picture


def _drawing(colours: tuple[str, str, str], size: int = 200) -> Image.Image:
    """A vertical tricolour (France: blue, white, red) with a dot, at any size."""
    image = Image.new("RGB", (size * 3 // 2, size), "white")
    draw = ImageDraw.Draw(image)
    third = image.width // 3
    for k, colour in enumerate(colours):
        draw.rectangle([k * third, 0, (k + 1) * third, size], fill=colour)
    draw.ellipse([size // 3, size // 3, size // 2, size // 2], fill="black")
    return image


def test_dedup_finds_resized_copies_but_not_recoloured_or_other_pictures() -> None:
    france = _drawing(("#0055a4", "white", "#ef4135"))
    copy = france.resize((150, 100), Image.Resampling.LANCZOS)  # another package's smaller copy
    italy = _drawing(("#009246", "white", "#ce2b37"))  # same layout, other colours
    other = Image.new("RGB", (200, 200), "white")
    ImageDraw.Draw(other).polygon([(100, 10), (190, 190), (10, 190)], fill="#0055a4")
    earlier = {"a-france": signature_of(france), "a-triangle": signature_of(other)}
    found = find_duplicates({"b-copy": signature_of(copy), "b-italy": signature_of(italy)}, earlier)
    assert [(d.id, d.kept_id) for d in found] == [("b-copy", "a-france")]
    assert find_duplicates({}, earlier) == [] and find_duplicates({"b": signature_of(copy)}, {}) == []
    assert Signature.decode(earlier["a-france"].encode()) == earlier["a-france"]


def test_dedup_compares_the_drawing_not_its_white_margin() -> None:
    """Two small, different icons in a wide white margin (the whole pictures hash alike), and a
    blank render, which has no signature at all (prepare logs it as a failure)."""
    square, ring = Image.new("RGB", (256, 256), "white"), Image.new("RGB", (256, 256), "white")
    ImageDraw.Draw(square).rectangle([100, 100, 150, 150], fill="#cccccc")
    ImageDraw.Draw(ring).ellipse([90, 90, 160, 160], outline="#555555", width=6)
    moved = Image.new("RGB", (300, 200), "white")
    moved.paste(square.crop((90, 90, 160, 160)), (20, 30))  # the same square, elsewhere on another canvas
    found = find_duplicates(
        {"b-ring": signature_of(ring), "b-moved": signature_of(moved)}, {"a-square": signature_of(square)}
    )
    assert [(d.id, d.kept_id) for d in found] == [("b-moved", "a-square")]
    with pytest.raises(BlankPicture):
        signature_of(Image.new("RGB", (64, 64), (254, 254, 254)))


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    """A fresh home sharing the real download cache and the two packages' unpacked trees."""
    settings = get_settings()
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "debs").symlink_to(cache_dir_of(settings.home))
    (tmp_path / "data" / "packages").mkdir(parents=True)
    for name in ("mdi", "tabler"):
        root = _roots(name)[0]
        (tmp_path / "data" / "packages" / root.name).symlink_to(root)
    return tmp_path


def _prepare(home: Path) -> subprocess.CompletedProcess[str]:
    # Ids hash the icon's name, the same in both sets: the first 215 of each hold `wiper`.
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from jointspace.cli import main; main()",
            "data",
            "prepare",
            "--sources",
            "mdi,tabler",
            "--limit",
            "215",
            "--size",
            "64",
        ],
        env={**os.environ, "JOINTSPACE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_prepare_prints_counts_and_drops_a_picture_two_sources_share(home: Path) -> None:
    """mdi and tabler draw the same windscreen wiper (`wiper`): one picture, kept once, in the first source."""
    result = _prepare(home)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip()}
    assert rows["source"][:5] == ["source", "pictures", "photos", "words", "dupes"]
    assert rows["mdi"][1:3] == ["215", "0"] and rows["mdi"][4] == "0" and int(rows["mdi"][3]) > 215
    assert rows["tabler"][1:3] == ["214", "0"] and rows["tabler"][4] == "1" and int(rows["tabler"][3]) > 214
    assert rows["all"][1:4] == ["429", "0", "1"] and "from 2 sources" in result.stdout
    dropped = (home / "data" / "tabler" / "duplicates.log").read_text().split("\t")
    assert dropped[1] == "wiper" and dropped[2] == dropped[0].replace("tabler-", "mdi-")
    posts = [json.loads(x) for x in (home / "data" / "tabler" / "posts.jsonl").read_text().splitlines()]
    assert len(posts) == 214 and dropped[0] not in {p["id"] for p in posts}
    assert not any(p["photo"] for p in posts)
    assert not any(i.photo for i in load_items(home / "data", sources=["tabler"]))
    assert len((home / "data" / "all.jsonl").read_text().splitlines()) == 429

    again = _prepare(home)
    assert again.returncode == 0 and again.stdout.count("(cached)") == 2


def test_npm_packages_are_pinned_and_named_as_npm_pack_names_them() -> None:
    from jointspace.datasets import npm

    from jointspace.errors import ConfigurationError

    assert npm.tarball_name("npm:@mdi/svg@7.4.47") == "mdi-svg-7.4.47.tgz"
    assert npm.tarball_name("npm:openmoji@17.0.0") == "openmoji-17.0.0.tgz"
    with pytest.raises(ConfigurationError, match="exact version"):
        npm.tarball_name("npm:openmoji")
    for name in ("openmoji", "twemoji", "notoemoji", "mdi", "tabler"):
        assert all(npm.is_npm(p) and "@" in p.removeprefix("npm:@") for p in get_source(name).packages)
