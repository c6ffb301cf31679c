"""flags (Debian `iso-flags-svg`, public domain / MIT per the package's copyright): the flag of every
ISO 3166-1 country as SVG (`country-4x3/<code>.svg`, the square copies left out as repeats), plus a
few regional flags (`_catalonia.svg`).

Words: the country's name, common name and official name from Debian's `iso-codes`
(`iso_3166-1.json`, read from the second package), and `flag`; the file name for the regional ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from jointspace.datasets.items import ImageSource, RawItem
from jointspace.datasets.text import content_words, hashtag, unique

SOURCE = "flags"
FLAGS = Path("usr/share/iso-flags-svg/country-4x3")
COUNTRIES = Path("usr/share/iso-codes/json/iso_3166-1.json")
NOISE = frozenset(
    {
        "republic",
        "state",
        "states",
        "kingdom",
        "democratic",
        "people's",
        "federal",
        "plurinational",
        "islamic",
        "union",
        "territory",
        "territories",
        "province",
        "pernefeldt",
    }
)


def countries(iso_root: Path) -> dict[str, dict[str, str]]:
    data = json.loads((iso_root / COUNTRIES).read_text(encoding="utf-8"))
    return {c["alpha_2"].lower(): c for c in data["3166-1"]}


def scan(root: Path, iso_root: Path) -> Iterator[RawItem]:
    names = countries(iso_root)
    for svg in sorted((root / FLAGS).glob("*.svg")):
        code = svg.stem
        country = names.get(code)
        if country is not None:
            name = country.get("common_name") or country["name"]
            texts = [name, country["name"], country.get("official_name", "")]
        elif code.startswith("_"):
            name = code.strip("_").replace("_", " ").title()
            texts = [name]
        else:
            continue
        words = unique(w for t in texts for w in content_words(t) if w not in NOISE and len(w) > 2)  # not `el`, `da`
        yield RawItem(
            source=SOURCE,
            key=svg.name,
            image=ImageSource("svg", path=svg),
            caption=f"Flag of {name}",
            hashtags=unique(["flag", *(hashtag(t) or "" for t in texts[:1])]),
            keywords=unique(["flag", *words]),
            category="flags",
        )
