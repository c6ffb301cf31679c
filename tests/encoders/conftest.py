"""Fixtures for the encoder tests: a home folder, the real models loaded once, and a tiny corpus of
pictures drawn here (coloured shapes with captions), so no test needs the prepared data."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from jointspace.datasets.prepared import Item
from PIL import Image, ImageDraw

from jointspace.records import Post
from jointspace.settings import Settings

COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 170, 60), "yellow": (240, 210, 20)}
SHAPES = ("circle", "square", "triangle")


def draw(shape: str, colour: str, size: int = 96, offset: int = 0) -> Image.Image:
    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    box = (12 + offset, 12 + offset, size - 12 - offset // 2, size - 12 - offset // 2)
    fill = COLOURS[colour]
    if shape == "circle":
        d.ellipse(box, fill=fill)
    elif shape == "square":
        d.rectangle(box, fill=fill)
    else:
        d.polygon([(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) // 2, box[1])], fill=fill)
    return img


def make_corpus(folder: Path, copies: int = 3) -> list[Item]:
    """copies × 4 colours × 3 shapes in two sources: `drawings` (train) and `icons` (small, val/test)."""
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for source, size in (("drawings", 96), ("icons", 48)):
        for n in range(copies):
            for colour in COLOURS:
                for shape in SHAPES:
                    pid = f"{source}-{colour}-{shape}-{n}"
                    path = folder / f"{pid}.png"
                    if not path.exists():
                        draw(shape, colour, size, offset=4 * n).save(path)
                    split = "train" if source == "drawings" else ("val" if n == 0 else "test")
                    post = Post(
                        id=pid,
                        image=str(path),
                        caption=f"a {colour} {shape}",
                        hashtags=(f"{colour}{shape.capitalize()}",),
                        source=source,
                    )
                    items.append(Item(post=post, category=f"shapes/{shape}", keywords=(colour, shape), split=split))
    return items


@pytest.fixture(scope="session")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("jointspace-home")


@pytest.fixture(scope="session")
def settings(home: Path) -> Settings:
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    return Settings(home=home, torch_threads=2, device="cpu", batch_size=16)


@pytest.fixture(scope="session")
def corpus(home: Path) -> list[Item]:
    return make_corpus(home / "corpus")


@pytest.fixture(scope="session")
def items_loader(corpus: list[Item]):
    def load(sources: Sequence[str] | None, split: str | Sequence[str] | None) -> list[Item]:
        splits = {split} if isinstance(split, str) else set(split or ("train", "val", "test"))
        return [it for it in corpus if (sources is None or it.post.source in sources) and it.split in splits]

    return load


@pytest.fixture(scope="session")
def minilm(settings: Settings):
    from jointspace.encoders.factories import minilm as factory

    return factory({}, settings)


@pytest.fixture(scope="session")
def glove(settings: Settings):
    from jointspace.encoders.factories import glove as factory

    return factory({}, settings)


@pytest.fixture(scope="session")
def backbone(settings: Settings):
    from jointspace.encoders.backbone import Backbone, BackboneSpec

    # The product's pool (GeM beside the average), as the workspace below keys its cache by it.
    return Backbone(BackboneSpec(pool=settings.backbone_pool), device="cpu", threads=2)


@pytest.fixture(scope="session")
def workspace(settings: Settings, items_loader, backbone, minilm):
    from jointspace.encoders.training_runs import Workspace

    ws = Workspace(settings, items_loader=items_loader)
    ws.cache._backbone = backbone  # share the session's network instead of loading a second copy
    ws._texts[("minilm", "")] = (minilm, None)
    return ws
