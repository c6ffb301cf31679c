"""gcompris-qt-data: real photos (WebP) inside Qt resource archives, captioned from the activities' own text.

- `explore_monuments`, `explore_world_animals`, `explore_farm_animals`: boards (`board*.qml`) list
  each photo (`image2`) with a title and a paragraph; monuments get their city from `gcompris_places`.
- `categorization`: photos in `resource/images/<category>/`, named by file (`measuringTape4.webp`);
  each folder's README credits the author and the Wikimedia file, whose title enriches the caption.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

from jointspace.datasets.items import ImageSource, RawItem
from jointspace.datasets.rcc import RccArchive
from jointspace.datasets.scanners.gcompris_places import CATEGORIZATION_MONUMENT_PLACES, MONUMENT_PLACES
from jointspace.datasets.text import content_words, hashtag, one_line, unique

SOURCE = "gcompris"
RCC_ROOT = Path("usr/share/gcompris-qt/rcc")
# archive → category given to its photos
EXPLORE_ARCHIVES = {
    "explore_monuments": "monuments",
    "explore_world_animals": "animals/wild",
    "explore_farm_animals": "animals/farm",
}
# categorisation folder → the words its photos are about ("others" says nothing)
CATEGORIZATION_FOLDERS = {
    "tools": "tools",
    "renewable": "renewable energy",
    "fishes": "fish",
    "monuments": "monument",
    "others": "",
}

# `"key": qsTr("value")` or `"key": "value"` inside one `{ ... }` of a board (escaped quotes allowed).
_PAIR = re.compile(r'"(\w+)"\s*:\s*(?:qsTr\(\s*)?"((?:[^"\\]|\\.)*)"')
_BLOCK = re.compile(r"\{[^{}]*\}")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])")


def _place(city: str | None, country: str | None, title: str) -> tuple[str, str | None]:
    """The place ("Paris, France") and what a caption says after "`title` in": the country alone
    when the title names the city already ("Rocamadour in Rocamadour, France" says it twice)."""
    place = ", ".join(x for x in (city, country) if x)
    return place, country if city and city.lower() in title.lower() else place


def board_entries(qml: str) -> list[dict[str, str]]:
    """The `{...}` objects of a board that show a photo (`image2`), as key → unescaped string."""
    entries = []
    for block in _BLOCK.findall(qml):
        pairs = {k: v.replace('\\"', '"').replace("\\'", "'") for k, v in _PAIR.findall(block)}
        if pairs.get("image2", "").endswith(".webp"):
            entries.append(pairs)
    return entries


def words_of_name(stem: str) -> str:
    """`measuringTape4` → `measuring tape`, `IndiaGate` → `india gate`."""
    return " ".join(w for w in _CAMEL.sub(" ", stem).replace("_", " ").lower().split() if not w.isdigit())


def credits(readme: str) -> dict[str, tuple[str, str]]:
    """file name → (author, title of the credited source) from a GCompris resource README."""
    found: dict[str, tuple[str, str]] = {}
    for block in re.split(r"\n\s*\n", readme):
        author = re.search(r"^Copyright:\s*(.+)$", block, re.M)
        source = re.search(r"^Source:\s*(\S+)", block, re.M)
        files = re.search(r"^Files:\s*(.*)", block, re.M | re.S)
        if not files:
            continue
        title = source_title(source.group(1)) if source else ""
        name = re.sub(r",?\s*\d{4}(-\d{4})?$", "", author.group(1).strip()) if author else ""
        for file in files.group(1).split():
            found[file.rsplit("/", 1)[-1]] = (name, title)
    return found


def source_title(url: str) -> str:
    """`.../File:Milk_pail,_America_(1234).JPG` → `Milk pail, America`; MaxPixel slugs likewise."""
    last = unquote(url.rstrip("/").rsplit("/", 1)[-1]).removeprefix("File:")
    last = re.sub(r"\.(jpe?g|png|tiff?|gif|webp|svg)$", "", last, flags=re.I)
    last = " ".join(last.replace("_", " ").replace("-", " ").split())
    last = re.sub(r"(\s+\(?\d+\)?)+$", "", last)  # trailing photo numbers and dates
    return last if "." not in last else ""


def _hashtags(*texts: str) -> tuple[str, ...]:
    return unique(hashtag(w) or "" for text in texts for w in content_words(text))


def _explore_items(archive: RccArchive, category: str) -> Iterator[RawItem]:
    seen: set[str] = set()
    boards = sorted(p for p in archive.paths() if "/board/" in p and p.endswith(".qml"))
    for board in boards:
        qml = archive.read(board).decode("utf-8", "replace")
        background = re.search(r'backgroundImage:\s*"[^"]*/resource/(\w+)/', qml)
        for entry in board_entries(qml):
            path = entry["image2"].removeprefix("qrc:/")
            if path in seen:
                continue
            seen.add(path)
            stem = path.rsplit("/", 1)[-1].removesuffix(".webp")
            title = entry.get("title") or words_of_name(stem)
            city, country = MONUMENT_PLACES.get(stem, (None, "")) if category == "monuments" else (None, "")
            place, shown = _place(city, country, title)
            caption = f"{title}{f' in {shown}' if shown else ''}. {entry.get('text', '')}"
            group = background.group(1) if background and category == "monuments" else ""
            yield _photo(
                archive,
                path,
                caption,
                city,
                hashtags=_hashtags(title, place, category, "monument" if category == "monuments" else ""),
                keywords=unique([*content_words(title), *content_words(category), *content_words(place)]),
                category=f"{category}/{group}" if group else category,
            )


def _photo(
    archive: RccArchive,
    path: str,
    caption: str,
    city: str | None,
    hashtags: tuple[str, ...],
    keywords: tuple[str, ...],
    category: str,
    author: str | None = None,
) -> RawItem:
    """One of the archive's photos as an item."""
    image = ImageSource("raster", data=archive.read(path))
    return RawItem(SOURCE, path, image, one_line(caption), hashtags, keywords, category, city, author, photo=True)


def _categorization_items(archive: RccArchive) -> Iterator[RawItem]:
    prefix = "gcompris/src/activities/categorization/resource/images/"
    for folder, topic in CATEGORIZATION_FOLDERS.items():
        readme = f"{prefix}{folder}/README"
        credited = credits(archive.read(readme).decode("utf-8", "replace")) if readme in archive.paths() else {}
        for path in sorted(p for p in archive.paths() if p.startswith(f"{prefix}{folder}/") and p.endswith(".webp")):
            file = path.rsplit("/", 1)[-1]
            stem = file.removesuffix(".webp")
            author, credit_title = credited.get(file, ("", ""))
            name = words_of_name(stem)
            city = country = None
            if folder == "monuments" and stem in CATEGORIZATION_MONUMENT_PLACES:
                name, city, country = CATEGORIZATION_MONUMENT_PLACES[stem]
            place, shown = _place(city, country, name)
            caption = name[:1].upper() + name[1:] + (f" in {shown}" if shown else "")
            if credit_title and credit_title.lower() != name.lower():
                caption += f" ({credit_title})"
            yield _photo(
                archive,
                path,
                caption,
                city,
                author=author or None,
                hashtags=_hashtags(name, topic, place),
                keywords=unique([*content_words(name), *content_words(topic), *content_words(place)]),
                category=f"categorization/{folder}",
            )


def scan(root: Path) -> Iterator[RawItem]:
    """Monument and animal photos of the explore activities, then the categorisation photos."""
    base = root / RCC_ROOT
    for name, category in EXPLORE_ARCHIVES.items():
        yield from _explore_items(RccArchive.open(base / f"{name}.rcc"), category)
    yield from _categorization_items(RccArchive.open(base / "categorization.rcc"))
