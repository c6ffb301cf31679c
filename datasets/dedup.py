"""Near-identical pictures across sources: a perceptual hash plus a colour and shape check.

Pictures are first cut to what is drawn on them (the box of pixels that are not white), so that a
small icon in a wide white margin is compared by its drawing, not by its margin: on the whole
picture, a grey square and a ring of dots, both small on white, hash alike.
The perceptual hash is `imagehash.phash` (64-bit DCT hash of the grey picture): it stays put under
resizing, re-encoding and small edits, so the same drawing shipped by two packages at other sizes or
formats matches. It is blind to colour, and flags or emoji that differ only in hue (France and Italy)
hash alike, so a match must also have the same colours (the mean RGB of a 4 × 4 grid over the
drawing, each channel within `MAX_COLOUR_DIFF`) and the same shape (the drawing's width / height
within `MAX_ASPECT_RATIO`). A picture with nothing drawn on it has no signature: `prepare` logs it
as a failure (a blank render says nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops

from jointspace.atomic_write import write_text_atomic

# Bits of 64 that may differ (imagehash's README calls 0 "the same" and small counts "similar";
# drawings of different things on white differ by 10 or more in practice, see docs/data.md).
MAX_HASH_DISTANCE = 4
MAX_COLOUR_DIFF = 32  # of 255, per channel and grid cell
MAX_ASPECT_RATIO = 1.2  # of the drawn boxes' width / height
GRID = 4
WHITE_TOLERANCE = 12  # a pixel this close to white (in every channel) is background


class BlankPicture(ValueError):
    """Nothing is drawn: every pixel is (nearly) white."""


@dataclass(frozen=True, slots=True)
class Signature:
    phash: int  # 64 bits
    colours: bytes  # GRID × GRID × 3 bytes: RGB means of the grid's cells over the drawn box
    aspect: float  # the drawn box's width / height

    def encode(self) -> str:
        return f"{self.phash:016x}:{self.colours.hex()}:{self.aspect:.4f}"

    @classmethod
    def decode(cls, text: str) -> Signature:
        phash, colours, aspect = text.split(":")
        return cls(int(phash, 16), bytes.fromhex(colours), float(aspect))


@dataclass(frozen=True, slots=True)
class Duplicate:
    id: str
    kept_id: str  # the earlier source's picture it matches
    distance: int  # differing hash bits


def signature_of(image: Image.Image) -> Signature:
    import imagehash  # imported where used: the rendering workers need it, the CLI start does not

    rgb = image.convert("RGB")
    # Darkest channel per pixel: background (white) stays near 255, anything drawn falls below it.
    ink = ImageChops.invert(ImageChops.darker(ImageChops.darker(*rgb.split()[:2]), rgb.getchannel("B")))
    box = ink.point(lambda v: 255 if v > WHITE_TOLERANCE else 0).getbbox()
    if box is None:
        raise BlankPicture("blank picture: nothing drawn on white")
    drawn = rgb.crop(box)
    phash = int(str(imagehash.phash(drawn)), 16)
    colours = drawn.resize((GRID, GRID), Image.Resampling.BOX).tobytes()
    return Signature(phash, colours, drawn.width / drawn.height)


def read_signatures(path: Path) -> dict[str, Signature]:
    """`id<TAB>signature` lines, as `write_signatures` writes them; empty when the file is missing."""
    if not path.is_file():
        return {}
    out: dict[str, Signature] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            post_id, text = line.split("\t")
            out[post_id] = Signature.decode(text)
    return out


def write_signatures(path: Path, signatures: Mapping[str, Signature]) -> None:
    write_text_atomic(path, "".join(f"{i}\t{s.encode()}\n" for i, s in sorted(signatures.items())))


def _arrays(signatures: Mapping[str, Signature]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    ids = list(signatures)
    hashes = np.array([signatures[i].phash for i in ids], dtype=np.uint64)
    colours = np.frombuffer(b"".join(signatures[i].colours for i in ids), dtype=np.uint8).reshape(len(ids), -1)
    aspects = np.log(np.array([signatures[i].aspect for i in ids], dtype=np.float64))
    return ids, hashes, colours.astype(np.int16), aspects


def find_duplicates(
    new: Mapping[str, Signature], earlier: Mapping[str, Signature], chunk: int = 512
) -> list[Duplicate]:
    """Pictures of `new` that match one of `earlier` (the nearest hash wins). Brute force in numpy:
    20,000 × 10,000 pairs take about a second, which is simpler than an index and fast enough."""
    if not new or not earlier:
        return []
    new_ids, new_hashes, new_colours, new_aspects = _arrays(new)
    old_ids, old_hashes, old_colours, old_aspects = _arrays(earlier)
    found: list[Duplicate] = []
    for start in range(0, len(new_ids), chunk):
        hashes = new_hashes[start : start + chunk]
        distance = np.bitwise_count(hashes[:, None] ^ old_hashes[None, :])
        close = distance <= MAX_HASH_DISTANCE
        rows = np.nonzero(close.any(axis=1))[0]
        for row in rows:
            cols = np.nonzero(close[row])[0]
            colour_ok = np.abs(old_colours[cols] - new_colours[start + row]).max(axis=1) <= MAX_COLOUR_DIFF
            shape_ok = np.abs(old_aspects[cols] - new_aspects[start + row]) <= np.log(MAX_ASPECT_RATIO)
            cols = cols[colour_ok & shape_ok]
            if len(cols):
                best = cols[np.argmin(distance[row, cols])]
                found.append(Duplicate(new_ids[start + row], old_ids[best], int(distance[row, best])))
    return found
