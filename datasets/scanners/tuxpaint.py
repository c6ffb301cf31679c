"""tuxpaint-stamps-default: stamps (PNG, some SVG only) with a one-line English description in `<name>.txt`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from jointspace.datasets.items import ImageSource, RawItem
from jointspace.datasets.text import category_words, content_words, hashtag, one_line, unique

SOURCE = "tuxpaint"
STAMPS_ROOT = Path("usr/share/tuxpaint/stamps")


def english_description(txt: Path) -> str:
    """The first line of a stamp's .txt (the English text; translations follow as `lang.utf8=...`)."""
    for line in txt.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if line and "=" not in line.split(" ", 1)[0]:
            return line
    return ""


def _picture(stem: Path) -> ImageSource | None:
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    if png.is_file():
        return ImageSource("raster", path=png)
    if svg.is_file():
        return ImageSource("svg", path=svg)
    return None


def scan(root: Path) -> Iterator[RawItem]:
    """Every stamp that has a description and a picture (mirror images and sound files ignored)."""
    base = root / STAMPS_ROOT
    for txt in sorted(base.rglob("*.txt")):
        stem = txt.with_suffix("")
        picture = _picture(stem)
        description = english_description(txt)
        if picture is None or not description:
            continue
        relative = stem.relative_to(base)
        category = relative.parent.as_posix()
        cat_words = category_words(category)
        hashtags = unique(
            [*(hashtag(w) or "" for w in content_words(description)), *(hashtag(w) or "" for w in cat_words)]
        )
        yield RawItem(
            source=SOURCE,
            key=relative.as_posix(),
            image=picture,
            caption=one_line(description),
            hashtags=hashtags,
            keywords=unique([*content_words(description), *cat_words]),
            category=category,
        )
