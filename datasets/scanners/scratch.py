"""scratch: the stage backdrops, real photos named by file (`beach-malibu.jpg`) in a folder (`Nature`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from jointspace.datasets.items import ImageSource, RawItem
from jointspace.datasets.text import content_words, hashtag, unique

SOURCE = "scratch"
BACKDROPS_ROOT = Path("usr/share/scratch/Media/Backgrounds")
# Photos are JPEG (and one PNG); the GIF backdrops are drawings and the .db files thumbnails.
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}
# File names that name a real place: name → (caption words, city).
PLACES = {
    "beach-malibu": ("beach in Malibu", "Malibu"),
    "berkeley-mural": ("mural in Berkeley", "Berkeley"),
    "mural-faro": ("mural in Faro", "Faro"),
    "building-at-mit": ("building at MIT", "Cambridge"),
    "route66": ("Route 66", None),
}


def describe(stem: str) -> str:
    """`woods-and-bench` → `Woods and bench`, `basketball-court1-a` → `Basketball court`."""
    words = [w for w in stem.replace("_", "-").split("-") if w]
    words = [w.rstrip("0123456789") or w for w in words if not (len(w) == 1 and w.isalpha())]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def scan(root: Path) -> Iterator[RawItem]:
    base = root / BACKDROPS_ROOT
    for path in sorted(p for p in base.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file()):
        relative = path.relative_to(base)
        folder = relative.parent.as_posix().lower()
        text, city = PLACES.get(path.stem, (describe(path.stem), None))
        caption = text[:1].upper() + text[1:]
        yield RawItem(
            source=SOURCE,
            key=relative.as_posix(),
            image=ImageSource("raster", path=path),
            caption=caption,
            city=city,
            category=folder,
            hashtags=unique([*(hashtag(w) or "" for w in content_words(caption)), folder]),
            keywords=unique([*content_words(caption), *content_words(folder)]),
            photo=True,
        )
