from __future__ import annotations

from pathlib import Path

import pytest
from jointspace.datasets.fixtures import build_instacities_fixture
from PIL import Image

from jointspace.settings import Settings


def test_instacities_fixture_has_the_real_layout(tmp_path: Path) -> None:
    root = tmp_path / "instacities"
    posts = build_instacities_fixture(root, n_per_city=3, cities=("london", "sydney"), settings=Settings())
    assert len(posts) == 6
    assert sorted(p.name for p in root.iterdir()) == ["captions", "img_resized"]
    for city in ("london", "sydney"):
        images = sorted(p.stem for p in (root / "img_resized" / city).glob("*.jpg"))
        captions = sorted(p.stem for p in (root / "captions" / city).glob("*.txt"))
        assert images == captions and len(images) == 3
        assert all(stem.isdigit() and len(stem) == 19 for stem in images)
    for post in posts:
        text = post.caption_file.read_text(encoding="utf-8")
        assert text == post.caption and f"#{post.city}" in text
        assert post.source_item.post.caption in text
        with Image.open(post.image) as image:
            assert image.format == "JPEG"


def test_instacities_fixture_refuses_odd_city_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lower-case"):
        build_instacities_fixture(tmp_path / "x", cities=("New York",), settings=Settings())
