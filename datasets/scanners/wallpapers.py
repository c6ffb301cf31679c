"""wallpapers (Debian `mate-backgrounds`, GPL-2+ and two CC BY-SA 4.0 per its copyright file, and
`plasma-workspace-wallpapers`, GPL-2+ per its copyright file): desktop backgrounds, about 55.

Words: the file or folder name split into words (`YellowFlower.jpg` in `nature`, `EveningGlow/`) and
the MATE folder (`nature`, `abstract`). Photos: 23 of them are real photographs; they were picked by
eye from a contact sheet of every wallpaper (the rest are renders and gradients) and get a short
description of what the photograph shows, written the same way, since their names (`Grey`,
`OneStandsOut`) say little. High-resolution copies of the same picture are left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from jointspace.datasets.items import ImageSource, RawItem
from jointspace.datasets.text import content_words, hashtag, unique

SOURCE = "wallpapers"
MATE = Path("usr/share/backgrounds/mate")
PLASMA = Path("usr/share/wallpapers")
# name → what the photograph shows (checked by eye); wallpapers not listed are not photographs.
PHOTOS = {
    "Aqua": "water drop splash",
    "Blinds": "green leaf close up",
    "Dune": "grass on a sand dune by the sea",
    "FreshFlower": "orange flower petals",
    "Garden": "red and yellow marigold flower in a garden",
    "GreenMeadow": "green grass meadow",
    "LadyBird": "ladybird on a grass blade with blue flowers",
    "RainDrops": "rain drops on green leaves",
    "Storm": "storm clouds over a flat field",
    "TwoWings": "dandelion seeds",
    "Wood": "pale wood grain",
    "YellowFlower": "yellow flower petals",
    "BytheWater": "wooden boardwalk by the water at sunset",
    "ColdRipple": "wooden jetty on a misty lake",
    "ColorfulCups": "colourful paper cups",
    "DarkestHour": "misty lake and mountains at dusk",
    "EveningGlow": "rowing boats on a lake shore at sunset",
    "FallenLeaf": "fallen autumn maple leaves",
    "Grey": "curved building facade in black and white",
    "Kite": "kite in a blue sky with clouds",
    "OneStandsOut": "green plants seen from above",
    "Path": "path through a pine forest",
    "summer_1am": "lake under a summer night sky",
}
_SIZE = re.compile(r"^(\d+)x(\d+)$")


def name_words(name: str) -> str:
    """`Ubuntu-Mate-Cold-no-logo` → `ubuntu mate cold`, `YellowFlower` → `yellow flower`."""
    name = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name.replace("no-logo", "").replace("Bythe", "By the"))
    return " ".join(name.replace("_", " ").replace("-", " ").split()).lower()


def _item(key: str, path: Path, name: str, folder: str) -> RawItem:
    described = PHOTOS.get(name)
    title = name_words(name)
    caption = f"{title.capitalize()}: {described}" if described else title.capitalize()
    place = "" if folder in ("plasma", "desktop") else folder  # where it sits, not what it shows
    words = [
        w for w in content_words(f"{title} {described or ''} {place}") if len(w) > 2 and not any(c.isdigit() for c in w)
    ]  # not `1am`
    return RawItem(
        source=SOURCE,
        key=key,
        image=ImageSource("raster", path=path),
        caption=caption,
        hashtags=unique([hashtag(title) or "", "wallpaper", hashtag(folder) or ""]),
        keywords=unique([*words, "wallpaper"]),
        category=f"{folder}/{title.replace(' ', '_')}",
        photo=described is not None,
    )


def _plasma_picture(folder: Path) -> Path | None:
    """The smallest landscape picture of a Plasma wallpaper package (they ship several sizes)."""
    sizes = []
    for image in (folder / "contents" / "images").glob("*"):
        match = _SIZE.match(image.stem)
        if match and int(match.group(1)) > int(match.group(2)):
            sizes.append((int(match.group(1)), image))
    return min(sizes)[1] if sizes else None


def scan(mate_root: Path, plasma_root: Path) -> Iterator[RawItem]:
    for path in sorted((mate_root / MATE).rglob("*")):
        if path.suffix.lower() in (".jpg", ".png") and not re.search(r"_\d+x\d+$", path.stem):
            album = path.parent.name
            yield _item(f"mate/{album}/{path.name}", path, path.stem, album)
    for folder in sorted(p for p in (plasma_root / PLASMA).iterdir() if p.is_dir()):
        picture = _plasma_picture(folder)
        if picture is not None:
            yield _item(f"plasma/{folder.name}", picture, folder.name, "plasma")
