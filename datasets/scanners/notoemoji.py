"""notoemoji (npm `emoji-datasource-google`, images Apache 2.0 by Google's Noto Emoji project, data
MIT): about 1,900 emoji in Google's rounded style, as 64-pixel PNGs (`img/google/64/<code>.png`).

Words: the same `emoji.json` as `twemoji` (Unicode name, short names, category and subcategory), read
by `twemoji.scan_set`; the pictures are Google's own drawings, not Twitter's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from jointspace.datasets.items import RawItem
from jointspace.datasets.scanners.twemoji import scan_set

SOURCE = "notoemoji"


def scan(root: Path) -> Iterator[RawItem]:
    return scan_set(root, SOURCE, "google")
