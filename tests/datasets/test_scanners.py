"""Scanners on the real Debian packages (fetched once per machine, unpacked once)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from jointspace.datasets.debian import unpack
from jointspace.datasets.prepare import cache_dir_of
from jointspace.datasets.scanners import gcompris, kphotoalbum, scratch
from jointspace.datasets.scanners.gcompris import source_title, words_of_name
from jointspace.datasets.scanners.gcompris_places import MONUMENT_PLACES

from jointspace.settings import get_settings


def _root(package: str) -> Path:
    settings = get_settings()
    return unpack(package, cache_dir_of(settings.home), settings.data_dir / "packages").root


@pytest.mark.slow
def test_gcompris_monuments_all_have_a_place_and_captions_name_it() -> None:
    items = list(gcompris.scan(_root("gcompris-qt-data")))
    groups = Counter(item.category.split("/")[0] for item in items)
    monuments = [i for i in items if i.category.startswith("monuments/")]
    assert len(monuments) == 49 == len(MONUMENT_PLACES)
    assert {i.key.rsplit("/", 1)[-1].removesuffix(".webp") for i in monuments} == set(MONUMENT_PLACES)
    assert sum(1 for m in monuments if m.city) == 48  # all but the Great Wall
    eiffel = next(m for m in monuments if m.key.endswith("eiffelTower.webp"))
    assert eiffel.city == "Paris" and eiffel.caption.startswith("Eiffel Tower in Paris, France.")
    assert "paris" in eiffel.hashtags and "tower" in eiffel.keywords
    assert groups["animals"] == 24 and groups["categorization"] >= 130
    assert len({i.id for i in items}) == len(items)
    assert all(i.image.data and i.image.data[:4] == b"RIFF" for i in items)  # WebP bytes from the archives
    assert all(i.photo for i in items)


@pytest.mark.slow
def test_scratch_and_kphotoalbum_photos_have_their_words_and_places() -> None:
    backdrops = list(scratch.scan(_root("scratch")))
    assert len(backdrops) >= 55 and all(b.image.path.suffix in {".jpg", ".png"} for b in backdrops)
    assert all(b.photo for b in backdrops)
    assert any(b.caption == "Lake" and b.category == "nature" for b in backdrops)
    assert next(b for b in backdrops if b.key.endswith("beach-malibu.jpg")).city == "Malibu"
    album = list(kphotoalbum.scan(_root("kphotoalbum")))
    assert len(album) == 24  # 25 entries, one of them a movie
    assert all(a.photo for a in album)
    assert {a.city for a in album} >= {"Odense", "Skagen", "Las Vegas", "New York"}
    assert all(a.created_at is not None and a.created_at.year < 2010 for a in album)
    assert next(a for a in album if a.key == "wayne.jpg").image.rotate_cw == 90


def test_name_and_credit_words() -> None:
    assert words_of_name("measuringTape4") == "measuring tape"
    assert words_of_name("IndiaGate") == "india gate"
    assert source_title("https://commons.wikimedia.org/wiki/File:Eiffel_Tower_(26514311499).jpg") == "Eiffel Tower"
    assert (
        source_title("https://commons.wikimedia.org/wiki/File:Kaiser-Jubil%C3%A4ums-Kirche.jpg")
        == "Kaiser Jubiläums Kirche"
    )
