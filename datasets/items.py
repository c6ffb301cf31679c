"""What every source scanner yields and what `prepare` writes: one raw item per picture.

A `RawItem` is picklable (plain paths and bytes) so the rendering pool can take it as is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

ImageKind = Literal["svg", "raster"]

# Posts get plausible dates spread over three years; fixed so that re-runs write the same files.
_EPOCH = datetime(2019, 1, 1, tzinfo=UTC)
_SPAN_S = 3 * 365 * 24 * 3600


@dataclass(frozen=True, slots=True)
class ImageSource:
    """Where a picture comes from: a file on disk or bytes pulled out of an archive."""

    kind: ImageKind
    path: Path | None = None
    data: bytes | None = None
    rotate_cw: int = 0  # degrees clockwise to turn the picture upright (photo albums record this)

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.path is None:
            raise ValueError("an ImageSource needs a path or data")
        return self.path.read_bytes()


@dataclass(frozen=True, slots=True)
class RawItem:
    """A picture with its text, before rendering. `key` is unique and stable within its source."""

    source: str
    key: str
    image: ImageSource
    caption: str
    hashtags: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    category: str = ""
    city: str | None = None
    author: str | None = None
    created_at: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # A real photograph (camera or telescope), as the scanner knows from the package's own folders
    # and documentation; drawings, renders, icons and emoji are False.
    photo: bool = False

    @property
    def id(self) -> str:
        return post_id(self.source, self.key)


def post_id(source: str, key: str) -> str:
    """Stable id: the source name and a hash of the item's path or name inside the package."""
    return f"{source}-{hashlib.sha1(key.encode('utf-8')).hexdigest()[:16]}"


def _id_number(post_id_: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{post_id_}".encode()).digest()[:8], "big")


def split_of(post_id_: str) -> str:
    """`train`, `val` or `test` (80/10/10), fixed by a hash of the id: the same on every machine."""
    bucket = _id_number(post_id_, "split") % 10
    return "train" if bucket < 8 else ("val" if bucket == 8 else "test")


def photo_split_of(post_id_: str) -> str:
    """`train`, `val` or `test` (40/30/30), fixed by a hash of the id, for the photo sources.

    They are small (about 300 photos in all), so an 80/10/10 split would leave a test part of ~30
    images; 30 % each gives validation and test enough queries to measure. Salted apart from
    `split_of`, so it does not depend on the 80/10/10 split a source was prepared with."""
    bucket = _id_number(post_id_, "photos") % 10
    return "train" if bucket < 4 else ("val" if bucket < 7 else "test")


def created_at_of(post_id_: str) -> datetime:
    """A plausible posting time (UTC, 2019-2021), deterministic from the id."""
    return _EPOCH + timedelta(seconds=_id_number(post_id_, "created_at") % _SPAN_S)
