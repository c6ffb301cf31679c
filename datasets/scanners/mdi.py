"""mdi (npm `@mdi/svg`, Apache 2.0, Pictogrammers): Material Design Icons, flat one-colour pictograms
as SVG (`svg/<name>.svg`).

Words: `meta.json`, each icon's name split at hyphens (`air-conditioner`), its aliases and its tags
(categories such as `Food / Drink`). Left out: deprecated icons, brand logos and letters or digits
(their words are names and codes, not things), and the style variants of another icon (`-outline`,
`-off`, ... with `baseIconId` pointing elsewhere), which repeat the base picture's words.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from jointspace.datasets.items import ImageSource, RawItem
from jointspace.datasets.text import ICON_NOISE, hashtag, icon_words, unique

SOURCE = "mdi"
PACKAGE = Path("package")
SKIPPED_TAGS = {"Brand / Logo", "Alpha / Numeric"}
# Name parts that describe the drawing's style or an action on the thing, not the thing.
NOISE = ICON_NOISE | frozenset(
    {
        "variant",
        "multiple",
        "box",
        "circle",
        "square",
        "remove",
        "edit",
        "settings",
        "cog",
        "lock",
        "sync",
        "alert",
        "arrow",
        "thick",
        "bold",
    }
)


def _words(text: str) -> list[str]:
    return icon_words(text, NOISE)


def scan(root: Path) -> Iterator[RawItem]:
    base = root / PACKAGE
    for icon in json.loads((base / "meta.json").read_text(encoding="utf-8")):
        tags = icon.get("tags", [])
        if icon.get("deprecated") or SKIPPED_TAGS & set(tags) or icon.get("baseIconId") != icon.get("id"):
            continue
        svg = base / "svg" / f"{icon['name']}.svg"
        keywords = unique(
            [
                *_words(icon["name"]),
                *(w for a in icon.get("aliases", []) for w in _words(a)),
                *(w for t in tags for w in _words(t.replace("/", " "))),
            ]
        )
        if not svg.is_file() or not _words(icon["name"]):
            continue
        caption = icon["name"].replace("-", " ")
        yield RawItem(
            source=SOURCE,
            key=icon["name"],
            image=ImageSource("svg", path=svg),
            caption=caption[:1].upper() + caption[1:],
            keywords=keywords,
            hashtags=unique(hashtag(t) or "" for t in [icon["name"], *icon.get("aliases", [])]),
            category="/".join(hashtag(t) or "" for t in tags[:1]) or "other",
            author=icon.get("author") or None,
        )
