"""openmoji (npm `openmoji`, CC BY-SA 4.0): about 2,400 emoji drawn in one open style, as colour SVG.

Words: `data/openmoji.json`, each emoji's CLDR annotation (`busts in silhouette`), its CLDR tags, the
OpenMoji project's own tags and its group and subgroup (`animals-nature/animal-mammal`). Skin-tone
variants (the same picture recoloured), components (hair and skin swatches) and brand logos are left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from jointspace.datasets.items import ImageSource, RawItem
from jointspace.datasets.scanners.emoji_words import label_words, sentence, tags_of

SOURCE = "openmoji"
PACKAGE = Path("package")
SKIPPED_GROUPS = {"component"}
SKIPPED_SUBGROUPS = {"brand"}


def _split_tags(text: str) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def scan(root: Path) -> Iterator[RawItem]:
    base = root / PACKAGE
    for entry in json.loads((base / "data" / "openmoji.json").read_text(encoding="utf-8")):
        if entry.get("skintone") or entry["group"] in SKIPPED_GROUPS or entry["subgroups"] in SKIPPED_SUBGROUPS:
            continue
        svg = base / "color" / "svg" / f"{entry['hexcode']}.svg"
        if not svg.is_file():
            continue
        annotation = entry["annotation"]
        tags = [*_split_tags(entry.get("tags", "")), *_split_tags(entry.get("openmoji_tags", ""))]
        group, subgroup = entry["group"], entry["subgroups"]
        keywords = label_words(annotation, tags, subgroup.replace("-", " "))
        if not keywords:
            continue
        yield RawItem(
            source=SOURCE,
            key=entry["hexcode"],
            image=ImageSource("svg", path=svg),
            caption=sentence(annotation),
            hashtags=tags_of(annotation, tags),
            keywords=keywords,
            category=f"{group}/{subgroup}",
            author=entry.get("openmoji_author") or None,
        )
