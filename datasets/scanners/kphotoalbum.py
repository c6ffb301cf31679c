"""kphotoalbum: the demo album's photos with places, people, events and descriptions in `index.xml`."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from jointspace.datasets.items import ImageSource, RawItem
from jointspace.datasets.text import content_words, hashtag, one_line, unique

SOURCE = "kphotoalbum"
DEMO_ROOT = Path("usr/share/kphotoalbum/demo")
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}
# Places in the demo album that are not cities (a country, a canyon).
NOT_CITIES = {"Denmark", "USA", "Grand Canyon"}
NOISE_TAGS = {"untagged", "scanned in"}


def _options(image: ElementTree.Element) -> dict[str, list[str]]:
    return {
        option.get("name", ""): [v.get("value", "") for v in option.findall("value")] for option in image.iter("option")
    }


def _start(image: ElementTree.Element) -> datetime | None:
    raw = image.get("startDate")
    try:
        return datetime.fromisoformat(raw).replace(tzinfo=UTC) if raw else None
    except ValueError:
        return None


def scan(root: Path) -> Iterator[RawItem]:
    base = root / DEMO_ROOT
    album = ElementTree.parse(base / "index.xml").getroot()
    for image in album.iter("image"):
        file = image.get("file", "")
        path = base / file
        if Path(file).suffix.lower() not in PHOTO_SUFFIXES or not path.is_file():
            continue  # the album also holds a movie
        options = _options(image)
        places, people = options.get("Places", []), options.get("People", [])
        events = [e for e in options.get("Events", []) if e not in NOISE_TAGS]
        cities = [p for p in places if p not in NOT_CITIES]
        label = (image.get("label") or Path(file).stem).replace("_", " ").rstrip("0123456789 ")
        where = ", ".join(p for p in places if p.lower() != label.lower())
        caption = image.get("description") or f"{label.capitalize()}{f' in {where}' if where else ''}"
        tags = [*events, *places, *people]
        yield RawItem(
            source=SOURCE,
            key=file,
            caption=one_line(caption),
            image=ImageSource("raster", path=path, rotate_cw=int(image.get("angle", "0") or 0)),
            hashtags=unique(hashtag(t) or "" for t in tags if t),
            keywords=unique([*content_words(label), *(w for t in tags for w in content_words(t))]),
            category="/".join(x for x in ("photos", label.replace(" ", "_")) if x),
            city=cities[0] if cities else None,
            created_at=_start(image),
            author=None,
            photo=True,
        )
