"""Near-identical pictures across sources: a perceptual hash plus a coarse colour check.

The perceptual hash is `imagehash.phash` (64-bit DCT hash of the grey picture): it stays put under
resizing, re-encoding and small edits, so the same drawing shipped by two packages at other sizes or
formats matches. It is blind to colour, and flags or emoji that differ only in hue (France and Italy)
hash alike, so a match must also have the same colours: the mean RGB of the picture's four quarters,
each channel within `MAX_COLOUR_DIFF`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

# Bits of 64 that may differ (imagehash's README calls 0 "the same" and small counts "similar";
# drawings of different things on white differ by 10 or more in practice, see docs/data.md).
MAX_HASH_DISTANCE = 4
MAX_COLOUR_DIFF = 24  # of 255, per channel and quarter


@dataclass(frozen=True, slots=True)
class Signature:
    phash: int  # 64 bits
    colours: bytes  # 12 bytes: RGB means of the four quarters

    def encode(self) -> str:
        return f"{self.phash:016x}:{self.colours.hex()}"

    @classmethod
    def decode(cls, text: str) -> "Signature":
        phash, colours = text.split(":")
        return cls(int(phash, 16), bytes.fromhex(colours))


@dataclass(frozen=True, slots=True)
class Duplicate:
    id: str
    kept_id: str  # the earlier source's picture it matches
    distance: int  # differing hash bits


def signature_of(image: Image.Image) -> Signature:
    import imagehash  # imported where used: the rendering workers need it, the CLI start does not

    rgb = image.convert("RGB")
    phash = int(str(imagehash.phash(rgb)), 16)
    colours = rgb.resize((2, 2), Image.Resampling.BOX).tobytes()
    return Signature(phash, colours)


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
    partial = path.with_name(path.name + ".part")
    partial.write_text("".join(f"{i}\t{s.encode()}\n" for i, s in sorted(signatures.items())), encoding="utf-8")
    partial.replace(path)


def _arrays(signatures: Mapping[str, Signature]) -> tuple[list[str], np.ndarray, np.ndarray]:
    ids = list(signatures)
    hashes = np.array([signatures[i].phash for i in ids], dtype=np.uint64)
    colours = np.frombuffer(b"".join(signatures[i].colours for i in ids), dtype=np.uint8).reshape(len(ids), 12)
    return ids, hashes, colours.astype(np.int16)


def find_duplicates(new: Mapping[str, Signature], earlier: Mapping[str, Signature],
                    chunk: int = 512) -> list[Duplicate]:
    """Pictures of `new` that match one of `earlier` (the nearest hash wins). Brute force in numpy:
    20,000 × 10,000 pairs take about a second, which is simpler than an index and fast enough."""
    if not new or not earlier:
        return []
    new_ids, new_hashes, new_colours = _arrays(new)
    old_ids, old_hashes, old_colours = _arrays(earlier)
    found: list[Duplicate] = []
    for start in range(0, len(new_ids), chunk):
        hashes = new_hashes[start:start + chunk]
        distance = np.bitwise_count(hashes[:, None] ^ old_hashes[None, :])
        close = distance <= MAX_HASH_DISTANCE
        rows = np.nonzero(close.any(axis=1))[0]
        for row in rows:
            cols = np.nonzero(close[row])[0]
            colour_ok = np.abs(old_colours[cols] - new_colours[start + row]).max(axis=1) <= MAX_COLOUR_DIFF
            cols = cols[colour_ok]
            if len(cols):
                best = cols[np.argmin(distance[row, cols])]
                found.append(Duplicate(new_ids[start + row], old_ids[best], int(distance[row, best])))
    return found
