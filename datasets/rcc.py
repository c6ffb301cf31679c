"""A reader for Qt binary resource archives (`.rcc`), enough to list and extract their files.

Hand-written because no PyPI package reads this format and Qt's own `rcc` tool cannot extract.
Layout (all integers big-endian), from Qt's `qresource.cpp`:
  header   b"qres", version u32, tree offset u32, data offset u32, names offset u32,
           and from version 3 on a flags u32
  tree     entries of 14 bytes (version 1) or 22 bytes (version >= 2: + u64 modification time):
           name offset u32, flags u16, then for a directory: child count u32, first child index u32;
           for a file: territory u16, language u16, data offset u32. Entry 0 is the root directory.
  names    u16 length, u32 hash, then `length` UTF-16BE code units
  data     u32 length, then the bytes; flag 1: zlib with a u32 uncompressed-size prefix (qCompress),
           flag 4: a zstd frame (needs the `zstandard` package).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

COMPRESSED_ZLIB = 0x01
DIRECTORY = 0x02
COMPRESSED_ZSTD = 0x04


class RccError(ValueError):
    """Bytes that are not a readable Qt resource archive (says what is wrong and where)."""


@dataclass(frozen=True, slots=True)
class RccEntry:
    path: str  # "/"-separated, without the leading ":/"
    flags: int
    data_offset: int


class RccArchive:
    """An archive read fully into memory (gcompris' largest is under 5 MB)."""

    def __init__(self, data: bytes, name: str = "<rcc>") -> None:
        self.data = data
        self.name = name
        if len(data) < 20 or data[:4] != b"qres":
            raise RccError(f"{name}: not a Qt resource archive (no 'qres' magic)")
        self.version, self.tree_offset, self.data_offset, self.names_offset = struct.unpack_from(">IIII", data, 4)
        if self.version not in (1, 2, 3):
            raise RccError(f"{name}: unsupported rcc version {self.version}")
        self.entry_size = 14 if self.version == 1 else 22
        self._entries: list[RccEntry] | None = None

    @classmethod
    def open(cls, path: Path) -> RccArchive:
        return cls(path.read_bytes(), name=path.name)

    def _unpack(self, fmt: str, offset: int) -> tuple[int, ...]:
        try:
            return struct.unpack_from(fmt, self.data, offset)
        except struct.error as exc:
            raise RccError(f"{self.name}: truncated at offset {offset}") from exc

    def _name(self, offset: int) -> str:
        start = self.names_offset + offset
        (length,) = self._unpack(">H", start)
        raw = self.data[start + 6 : start + 6 + 2 * length]  # skip the u16 length and u32 hash
        if len(raw) != 2 * length:
            raise RccError(f"{self.name}: name at offset {offset} runs past the end")
        return raw.decode("utf-16-be")

    def _walk(self, index: int, prefix: str, depth: int) -> Iterator[RccEntry]:
        if depth > 64:
            raise RccError(f"{self.name}: directory tree too deep (a loop?)")
        position = self.tree_offset + index * self.entry_size
        name_offset, flags = self._unpack(">IH", position)
        name = "" if index == 0 else self._name(name_offset)
        path = f"{prefix}/{name}" if prefix else name
        if flags & DIRECTORY:
            count, first = self._unpack(">II", position + 6)
            for child in range(first, first + count):
                yield from self._walk(child, path, depth + 1)
        else:
            (data_offset,) = self._unpack(">I", position + 10)
            yield RccEntry(path=path, flags=flags, data_offset=data_offset)

    def entries(self) -> list[RccEntry]:
        """Every file in the archive, in tree order."""
        if self._entries is None:
            self._entries = list(self._walk(0, "", 0))
        return self._entries

    def paths(self) -> list[str]:
        return [entry.path for entry in self.entries()]

    def read_entry(self, entry: RccEntry) -> bytes:
        """The file's bytes, decompressed. Raises RccError for a damaged blob or a missing zstd package."""
        start = self.data_offset + entry.data_offset
        (length,) = self._unpack(">I", start)
        blob = self.data[start + 4 : start + 4 + length]
        if len(blob) != length:
            raise RccError(f"{self.name}: data of {entry.path} runs past the end")
        if entry.flags & COMPRESSED_ZLIB:
            try:
                return zlib.decompress(blob[4:])  # the first 4 bytes repeat the uncompressed size
            except zlib.error as exc:
                raise RccError(f"{self.name}: {entry.path}: bad zlib data ({exc})") from exc
        if entry.flags & COMPRESSED_ZSTD:
            try:
                import zstandard
            except ImportError as exc:
                raise RccError(f"{self.name}: {entry.path} is zstd-compressed; pip install zstandard") from exc
            return zstandard.ZstdDecompressor().decompress(blob, max_output_size=1 << 30)
        return blob

    def read(self, path: str) -> bytes:
        """The bytes of the file at `path` (":/" prefix optional). Raises KeyError when absent."""
        path = path.removeprefix(":/").lstrip("/")
        for entry in self.entries():
            if entry.path == path:
                return self.read_entry(entry)
        raise KeyError(f"{self.name} has no {path}")

    def files(self) -> Iterator[tuple[str, bytes]]:
        """(path, bytes) for every file."""
        for entry in self.entries():
            yield entry.path, self.read_entry(entry)
