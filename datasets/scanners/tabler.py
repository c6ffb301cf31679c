"""tabler (npm `@tabler/icons`, MIT, Paweł Kuna): Tabler's outline pictograms as SVG
(`icons/outline/<name>.svg`), drawn with 2-pixel strokes (a different hand from `mdi`'s filled shapes).

Words: `icons.json`, each icon's name split at hyphens (`bike`, `building-castle`), its tags and
its category. Left out: brand logos, letters and numbers (names and codes, not things) and the
`-off` variants (the same picture struck through).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from jointspace.datasets.items import ImageSource, RawItem
from jointspace.datasets.text import ICON_NOISE, hashtag, icon_words, unique

SOURCE = "tabler"
PACKAGE = Path("package")
SKIPPED_CATEGORIES = {"Brand", "Letters", "Numbers"}
NOISE = ICON_NOISE | frozenset(
    {
        "filled",
        "dots",
        "up",
        "down",
    }
)


def _words(text: str) -> list[str]:
    return icon_words(text, NOISE)


def scan(root: Path) -> Iterator[RawItem]:
    base = root / PACKAGE
    for name, icon in sorted(json.loads((base / "icons.json").read_text(encoding="utf-8")).items()):
        category = icon.get("category") or ""
        svg = base / "icons" / "outline" / f"{name}.svg"
        if category in SKIPPED_CATEGORIES or name.endswith("-off") or not svg.is_file() or not _words(name):
            continue
        tags = [str(t) for t in icon.get("tags", [])]
        caption = name.replace("-", " ")
        yield RawItem(
            source=SOURCE,
            key=name,
            image=ImageSource("svg", path=svg),
            caption=caption[:1].upper() + caption[1:],
            keywords=unique([*_words(name), *(w for t in tags for w in _words(t)), *_words(category)]),
            hashtags=unique([hashtag(name) or "", *(hashtag(t) or "" for t in tags)]),
            category=hashtag(category) or "other",
        )
