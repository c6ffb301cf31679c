"""One scanner per source: each turns its unpacked package(s) into `RawItem`s.

`get_source(name)` gives the packages and scanner for a short name used by `--sources`. A package is
a Debian package name (fetched with `apt-get download`) or `npm:NAME@VERSION` (fetched with `npm pack`);
a scanner gets the unpacked root of each of its packages, in the order listed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from jointspace.datasets.items import RawItem


@dataclass(frozen=True, slots=True)
class SourceSpec:
    name: str
    packages: tuple[str, ...]
    scan: Callable[..., Iterator[RawItem]]  # unpacked package roots (one per package) → items
    image_suffix: str  # ".png" for drawings (sharp edges), ".jpg" for photos

    @property
    def package(self) -> str:
        """The main package (the one the pictures come from)."""
        return self.packages[0]


# name → (packages, scanner module, image suffix: PNG keeps drawings' sharp edges, JPEG suits photos).
# The order is the de-duplication order too: a picture already seen in an earlier source is dropped.
_TABLE: dict[str, tuple[tuple[str, ...], str, str]] = {
    "openclipart": (("openclipart-svg",), "openclipart", ".png"),
    "tuxpaint": (("tuxpaint-stamps-default",), "tuxpaint", ".png"),
    "gcompris": (("gcompris-qt-data",), "gcompris", ".jpg"),
    "scratch": (("scratch",), "scratch", ".jpg"),
    "kphotoalbum": (("kphotoalbum",), "kphotoalbum", ".jpg"),
    "stellarium": (("stellarium-data",), "stellarium", ".jpg"),
    "wallpapers": (("mate-backgrounds", "plasma-workspace-wallpapers"), "wallpapers", ".jpg"),
    "flags": (("iso-flags-svg", "iso-codes"), "flags", ".png"),
    "emojione": (("ruby-gemojione",), "emojione", ".png"),
    "openmoji": (("npm:openmoji@17.0.0",), "openmoji", ".png"),
    "twemoji": (("npm:emoji-datasource-twitter@16.0.0",), "twemoji", ".png"),
    "notoemoji": (("npm:emoji-datasource-google@16.0.0",), "notoemoji", ".png"),
    "mdi": (("npm:@mdi/svg@7.4.47",), "mdi", ".png"),
    "tabler": (("npm:@tabler/icons@3.52.0",), "tabler", ".png"),
}
SOURCE_NAMES = tuple(_TABLE)


def get_source(name: str) -> SourceSpec:
    """The spec for a short source name; raises KeyError listing the choices."""
    if name not in _TABLE:
        raise KeyError(f"unknown source {name!r}; choose from {', '.join(SOURCE_NAMES)}")
    packages, module, suffix = _TABLE[name]
    scanner = importlib.import_module(f"jointspace.datasets.scanners.{module}")
    return SourceSpec(name, packages, scanner.scan, suffix)
