"""stellarium (Debian `stellarium-data`, GPL-2+ per the package's copyright file; each sky culture's
`info.ini` names its drawings' licence, e.g. western: CC BY-SA 4.0 + Free Art License): two kinds of picture.

- `nebulae/default/*.png`: about 550 telescope photographs of galaxies, nebulae and star clusters
  (real photographs: the textures are astrophotographers' images, credited in `textures.json`).
  Words: the object's proper names from `nebulae/default/names.dat` (NGC 2237 → `Rosette Nebula`),
  matched through the file name (`ngc2237.png`, `m42.png`, `barnard150.png`); the famous Messier
  objects, which names.dat lists under their NGC numbers, by the small table below; always `space`,
  `astronomy`, `night`, `sky`, `telescope`, `photo`.
- `skycultures/<culture>/*.png`: about 700 constellation drawings of 30 sky cultures (Hevelius'
  figures for the western sky, Maya, Egyptian, Chinese, ... figures). Words: the constellation's name
  in `constellation_names.eng.fab` (`_("Hole-backed Caiman")`), for the Latin IAU names their English
  meaning (Ursa Major → great bear), and `constellation`. A drawing shipped by several cultures once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

from jointspace.datasets.items import ImageSource, RawItem
from jointspace.datasets.text import content_words, hashtag, one_line, unique

SOURCE = "stellarium"
BASE = Path("usr/share/stellarium")
NEBULAE = BASE / "nebulae" / "default"
SKY = ("space", "astronomy", "night", "sky", "telescope", "photo")
# file-name prefix → names.dat catalogue prefix
CATALOGUES = {
    "ngc": "NGC",
    "n": "NGC",
    "ic": "IC",
    "sh2": "SH2",
    "sh": "SH2",
    "barnard": "B",
    "b": "B",
    "abell": "ACO",
    "ldn": "LDN",
    "lbn": "LBN",
    "vdb": "VDB",
    "rcw": "RCW",
    "pgc": "PGC",
    "ugc": "UGC",
    "cr": "CR",
    "mel": "MEL",
    "ced": "CED",
    "m": "M",
}
# Messier objects that names.dat only names under their NGC number (the well-known ones).
MESSIER = {
    1: "Crab Nebula",
    8: "Lagoon Nebula",
    13: "Great Hercules Globular Cluster",
    16: "Eagle Nebula",
    17: "Omega Nebula",
    20: "Trifid Nebula",
    27: "Dumbbell Nebula",
    31: "Andromeda Galaxy",
    33: "Triangulum Galaxy",
    42: "Orion Nebula",
    44: "Beehive Cluster",
    45: "Pleiades star cluster",
    51: "Whirlpool Galaxy",
    57: "Ring Nebula",
    63: "Sunflower Galaxy",
    64: "Black Eye Galaxy",
    76: "Little Dumbbell Nebula",
    81: "Bode's Galaxy",
    82: "Cigar Galaxy",
    83: "Southern Pinwheel Galaxy",
    97: "Owl Nebula",
    101: "Pinwheel Galaxy",
    104: "Sombrero Galaxy",
    106: "Spiral Galaxy",
}
# The 88 IAU constellations' Latin names and what they mean (the western cultures' art shows these).
LATIN = {
    "Andromeda": "chained princess",
    "Antlia": "air pump",
    "Apus": "bird of paradise",
    "Aquarius": "water bearer",
    "Aquila": "eagle",
    "Ara": "altar",
    "Aries": "ram",
    "Auriga": "charioteer",
    "Bootes": "herdsman",
    "Caelum": "chisel",
    "Camelopardalis": "giraffe",
    "Cancer": "crab",
    "Canes Venatici": "hunting dogs",
    "Canis Major": "great dog",
    "Canis Minor": "little dog",
    "Capricornus": "sea goat",
    "Carina": "keel of a ship",
    "Cassiopeia": "seated queen",
    "Centaurus": "centaur",
    "Cepheus": "king",
    "Cetus": "sea monster whale",
    "Chamaeleon": "chameleon",
    "Circinus": "compass",
    "Columba": "dove",
    "Coma Berenices": "hair of Berenice",
    "Corona Australis": "southern crown",
    "Corona Borealis": "northern crown",
    "Corvus": "crow",
    "Crater": "cup",
    "Crux": "southern cross",
    "Cygnus": "swan",
    "Delphinus": "dolphin",
    "Dorado": "swordfish",
    "Draco": "dragon",
    "Equuleus": "little horse",
    "Eridanus": "river",
    "Fornax": "furnace",
    "Gemini": "twins",
    "Grus": "crane bird",
    "Hercules": "hero",
    "Horologium": "pendulum clock",
    "Hydra": "water snake",
    "Hydrus": "male water snake",
    "Indus": "indian",
    "Lacerta": "lizard",
    "Leo": "lion",
    "Leo Minor": "little lion",
    "Lepus": "hare",
    "Libra": "scales",
    "Lupus": "wolf",
    "Lynx": "lynx",
    "Lyra": "lyre",
    "Mensa": "table mountain",
    "Microscopium": "microscope",
    "Monoceros": "unicorn",
    "Musca": "fly",
    "Norma": "carpenter's square",
    "Octans": "octant",
    "Ophiuchus": "serpent bearer",
    "Orion": "hunter",
    "Pavo": "peacock",
    "Pegasus": "winged horse",
    "Perseus": "hero",
    "Phoenix": "phoenix bird",
    "Pictor": "painter's easel",
    "Pisces": "fishes",
    "Piscis Austrinus": "southern fish",
    "Puppis": "poop deck of a ship",
    "Pyxis": "compass",
    "Reticulum": "net",
    "Sagitta": "arrow",
    "Sagittarius": "archer",
    "Scorpius": "scorpion",
    "Sculptor": "sculptor",
    "Scutum": "shield",
    "Serpens": "serpent",
    "Sextans": "sextant",
    "Taurus": "bull",
    "Telescopium": "telescope",
    "Triangulum": "triangle",
    "Triangulum Australe": "southern triangle",
    "Tucana": "toucan",
    "Ursa Major": "great bear",
    "Ursa Minor": "little bear",
    "Vela": "sails of a ship",
    "Virgo": "maiden",
    "Volans": "flying fish",
    "Vulpecula": "little fox",
    "Argo Navis": "ship Argo",
}
_FILE = re.compile(r"^([a-z]+?)[-_ ]?(\d+)")
_NAME = re.compile(r'^\s*(\S+)\s+(\d+)\s+_\("([^"]+)"\)')
_ENG = re.compile(r'^\s*(\S+)\s+"([^"]*)"\s+_\("([^"]+)"\)')


def _data_lines(path: Path, pattern: re.Pattern[str]) -> Iterator[re.Match[str]]:
    """`pattern`'s matches on the lines of one of Stellarium's data files, comment lines left out."""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.lstrip().startswith("#") and (match := pattern.match(line)):
            yield match


def dso_names(names_dat: Path) -> dict[tuple[str, str], list[str]]:
    """(catalogue, number) → proper names, first the usual one."""
    out: dict[tuple[str, str], list[str]] = {}
    for match in _data_lines(names_dat, _NAME):
        out.setdefault((match.group(1).upper(), match.group(2)), []).append(match.group(3))
    return out


def _designation(stem: str) -> tuple[str, str] | None:
    match = _FILE.match(stem.lower())
    if not match or match.group(1) not in CATALOGUES:
        return None
    return CATALOGUES[match.group(1)], str(int(match.group(2)))


def _plain_name(stem: str) -> str:
    """`GammaCygni-vasey` → `Gamma Cygni`, `virgo_cluster` → `virgo cluster` (the photographer's suffix dropped)."""
    parts = stem.replace("_", "-").split("-")
    if len(parts) > 1 and parts[-1].isalpha() and parts[-1].islower():
        parts = parts[:-1]
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", " ".join(parts)).strip()


def _nebula_items(root: Path) -> Iterator[RawItem]:
    folder = root / NEBULAE
    names = dso_names(folder / "names.dat")
    for png in sorted(folder.glob("*.png")):
        designation = _designation(png.stem)
        proper: list[str] = []
        if designation is not None:
            proper = list(names.get(designation, []))
            if designation[0] == "M" and int(designation[1]) in MESSIER:
                proper.insert(0, MESSIER[int(designation[1])])
            label = f"{designation[0]} {designation[1]}"
        else:
            label = _plain_name(png.stem)
            proper = [label]
        title = f"{label} ({proper[0]})" if proper and proper[0] != label else label
        words = [w for p in proper[:3] for w in content_words(p) if len(w) > 2 and not any(c.isdigit() for c in w)]
        yield RawItem(
            source=SOURCE,
            key=f"nebulae/{png.name}",
            image=ImageSource("raster", path=png),
            caption=one_line(f"Telescope photograph of {title}"),
            category="nebulae",
            hashtags=unique([*(hashtag(p) or "" for p in proper[:3]), "astronomy", "space"]),
            keywords=unique([*words, *SKY]),
            photo=True,
        )


def _english_names(fab: Path) -> dict[str, str]:
    return {match.group(1): match.group(3) for match in _data_lines(fab, _ENG)} if fab.is_file() else {}


def _constellation_items(root: Path) -> Iterator[RawItem]:
    seen: set[str] = set()
    # `western` first: its drawings are the ones other cultures reuse, so they keep the western names.
    for culture_dir in sorted((root / BASE / "skycultures").iterdir(), key=lambda p: (p.name != "western", p.name)):
        art = culture_dir / "constellationsart.fab"
        if not art.is_file():
            continue
        names = _english_names(culture_dir / "constellation_names.eng.fab")
        culture = culture_dir.name
        for line in art.read_text(encoding="utf-8", errors="replace").splitlines():
            fields = line.split()
            if len(fields) < 2 or line.lstrip().startswith("#"):
                continue
            abbr, file = fields[0], fields[1]
            picture = culture_dir / file
            name = names.get(abbr, "")
            if not picture.is_file() or not name:
                continue
            digest = hashlib.sha1(picture.read_bytes()).hexdigest()
            if digest in seen:  # the same drawing in another culture (the western variants share Hevelius')
                continue
            seen.add(digest)
            name = re.sub(r"\s*\([^)]*\)", "", name).strip() or name
            meaning = LATIN.get(name, "")
            words = [w for w in content_words(f"{name} {meaning}") if len(w) > 2]
            culture_words = content_words(culture.replace("_", " "))
            caption = f"Constellation {name}{f' ({meaning})' if meaning else ''}, {culture.replace('_', ' ')} sky"
            yield RawItem(
                source=SOURCE,
                key=f"skycultures/{culture}/{file}",
                image=ImageSource("raster", path=picture),
                caption=one_line(caption[:1].upper() + caption[1:]),
                category=f"constellations/{culture}",
                hashtags=unique(
                    [
                        hashtag(name) or "",
                        hashtag(meaning) or "",
                        "constellation",
                        *(hashtag(w) or "" for w in culture_words[:1]),
                    ]
                ),
                keywords=unique([*words, "constellation"]),
            )


def scan(root: Path) -> Iterator[RawItem]:
    yield from _nebula_items(root)
    yield from _constellation_items(root)
