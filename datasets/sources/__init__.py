"""One scanner per Debian package: each turns an unpacked package into `RawItem`s.

`get_source(name)` gives the package and scanner for a short name used by `--sources`.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from jointspace.datasets.items import RawItem


@dataclass(frozen=True, slots=True)
class SourceSpec:
    name: str
    package: str
    scan: Callable[[Path], Iterator[RawItem]]  # unpacked package root → items
    image_suffix: str  # ".png" for drawings (sharp edges), ".jpg" for photos


# name → (Debian package, scanner module, image suffix: PNG keeps drawings' sharp edges, JPEG suits photos)
_TABLE: dict[str, tuple[str, str, str]] = {
    "openclipart": ("openclipart-svg", "openclipart", ".png"),
    "tuxpaint": ("tuxpaint-stamps-default", "tuxpaint", ".png"),
    "gcompris": ("gcompris-qt-data", "gcompris", ".jpg"),
    "scratch": ("scratch", "scratch", ".jpg"),
    "kphotoalbum": ("kphotoalbum", "kphotoalbum", ".jpg"),
}
SOURCE_NAMES = tuple(_TABLE)


def get_source(name: str) -> SourceSpec:
    """The spec for a short source name; raises KeyError listing the choices."""
    if name not in _TABLE:
        raise KeyError(f"unknown source {name!r}; choose from {', '.join(SOURCE_NAMES)}")
    package, module, suffix = _TABLE[name]
    scanner = importlib.import_module(f"jointspace.datasets.sources.{module}")
    return SourceSpec(name, package, scanner.scan, suffix)
