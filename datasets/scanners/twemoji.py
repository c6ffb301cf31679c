"""twemoji (npm `emoji-datasource-twitter`, images CC BY 4.0 by Twitter / jdecked, data MIT): about
1,900 emoji in Twitter's flat style, as 64-pixel PNGs (`img/twitter/64/<code>.png`).

Words: `emoji.json`, each emoji's Unicode name (`Egypt Flag`), its short names (`flag-eg` is a code
and left out when it only repeats the name's words), category and subcategory. Skin-tone variants
are not separate entries there; components (skin swatches) are left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from jointspace.datasets.items import ImageSource, RawItem
from jointspace.datasets.scanners.emoji_words import label_words, sentence, tags_of

SOURCE = "twemoji"
PACKAGE = Path("package")
SKIPPED_CATEGORIES = {"Component"}
_CODE = re.compile(r"^(flag-[a-z]{2,}|[a-z]{2})$")  # `flag-eg`, `eg`: country codes, not words


def scan_set(root: Path, source: str, image_set: str) -> Iterator[RawItem]:
    """An emoji-datasource package's pictures of one set (`twitter`, `google`) with the shared words."""
    base = root / PACKAGE
    for entry in json.loads((base / "emoji.json").read_text(encoding="utf-8")):
        if not entry.get(f"has_img_{image_set}") or entry.get("category") in SKIPPED_CATEGORIES:
            continue
        png = base / "img" / image_set / "64" / entry["image"]
        name = (entry.get("name") or entry.get("short_name") or "").lower()
        if not png.is_file() or not name:
            continue
        short = [s.replace("_", " ") for s in entry.get("short_names", []) if not _CODE.match(s)]
        category, sub = entry.get("category", ""), entry.get("subcategory", "")
        keywords = label_words(name, short, sub.replace("-", " "))
        if not keywords:
            continue
        yield RawItem(
            source=source,
            key=entry["unified"],
            image=ImageSource("raster", path=png),
            caption=sentence(name),
            hashtags=tags_of(name, short),
            keywords=keywords,
            category=f"{category.lower().replace(' & ', '-').replace(' ', '-')}/{sub}",
        )


def scan(root: Path) -> Iterator[RawItem]:
    return scan_set(root, SOURCE, "twitter")
