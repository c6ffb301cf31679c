"""emojione (Debian `ruby-gemojione`, artwork CC BY-SA 4.0 by Ranks.com / EmojiOne 2): about 1,350
emoji in EmojiOne's glossy style, as SVG (`assets/svg/<CODE>.svg`).

Words: the gem's `config/index.json`, each emoji's name (`tristan da cunha`), its keywords
(`country`, `flag`), its aliases and category. Skin-tone variants (`_tone1`..`_tone5`) and the tone
swatches themselves (category `modifier`) are left out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from jointspace.datasets.items import ImageSource, RawItem
from jointspace.datasets.scanners.emoji_words import label_words, sentence, tags_of

SOURCE = "emojione"
GEM = Path("usr/share/rubygems-integration/all/gems")


def scan(root: Path) -> Iterator[RawItem]:
    gem = next((root / GEM).glob("gemojione-*"))
    index = json.loads((gem / "config" / "index.json").read_text(encoding="utf-8"))
    for key, entry in sorted(index.items()):
        if entry.get("category") in ("modifier", "extras") or "_tone" in key:
            continue
        svg = gem / "assets" / "svg" / f"{entry['unicode'].upper()}.svg"
        if not svg.is_file():
            continue
        name = entry.get("name", "")
        aliases = [a.strip(":").replace("_", " ") for a in [entry.get("shortname", ""), *entry.get("aliases", [])]]
        keywords = label_words(name, entry.get("keywords", []), [a for a in aliases if len(a) > 2])
        if not keywords:
            continue
        yield RawItem(
            source=SOURCE,
            key=key,
            image=ImageSource("svg", path=svg),
            caption=sentence(name),
            hashtags=tags_of(name, entry.get("keywords", [])),
            keywords=keywords,
            category=entry.get("category", ""),
        )
