"""The Qt resource reader on archives built by hand, byte by byte, as Qt's rcc lays them out."""

from __future__ import annotations

import struct
import zlib

import pytest
from jointspace.datasets.rcc import COMPRESSED_ZLIB, DIRECTORY, RccArchive, RccError


def _name_record(name: str) -> bytes:
    encoded = name.encode("utf-16-be")
    return struct.pack(">HI", len(name), 0x1234) + encoded  # the hash is not checked by readers


def build_rcc(version: int, files: dict[str, tuple[bytes, bool]]) -> bytes:
    """A one-folder archive `:/dir/<name>`; each file stored plain or zlib-compressed (qCompress)."""
    names = b""
    name_offsets: dict[str, int] = {}
    for name in ["dir", *files]:
        name_offsets[name] = len(names)
        names += _name_record(name)
    data = b""
    data_offsets: dict[str, int] = {}
    for name, (content, compress) in files.items():
        blob = struct.pack(">I", len(content)) + zlib.compress(content) if compress else content
        data_offsets[name] = len(data)
        data += struct.pack(">I", len(blob)) + blob
    stamp = b"\0" * 8 if version >= 2 else b""

    def directory(name_offset: int, count: int, first: int) -> bytes:
        return struct.pack(">IHII", name_offset, DIRECTORY, count, first) + stamp

    def file(name: str, compress: bool) -> bytes:
        flags = COMPRESSED_ZLIB if compress else 0
        return struct.pack(">IHHHI", name_offsets[name], flags, 0, 0, data_offsets[name]) + stamp

    tree = directory(0, 1, 1) + directory(name_offsets["dir"], len(files), 2)
    tree += b"".join(file(name, compress) for name, (_, compress) in files.items())
    header_size = 20 + (4 if version >= 3 else 0)
    tree_offset = header_size
    data_offset = tree_offset + len(tree)
    names_offset = data_offset + len(data)
    header = b"qres" + struct.pack(">IIII", version, tree_offset, data_offset, names_offset)
    if version >= 3:
        header += struct.pack(">I", 0)
    return header + tree + data + names


@pytest.mark.parametrize("version", [1, 2, 3])
def test_reads_plain_and_zlib_files_in_every_version(version: int) -> None:
    text = "caption: Tour Eiffel ✓".encode()
    picture = bytes(range(256)) * 40
    archive = RccArchive(build_rcc(version, {"a.qml": (text, True), "b.webp": (picture, False)}))
    assert archive.entry_size == (14 if version == 1 else 22)
    assert archive.paths() == ["dir/a.qml", "dir/b.webp"]
    assert archive.read("dir/a.qml") == text
    assert archive.read(":/dir/b.webp") == picture
    assert dict(archive.files()) == {"dir/a.qml": text, "dir/b.webp": picture}


def test_missing_file_and_bad_bytes_are_clear_errors() -> None:
    archive = RccArchive(build_rcc(3, {"a.txt": (b"x", False)}))
    with pytest.raises(KeyError, match="no dir/nope"):
        archive.read("dir/nope")
    with pytest.raises(RccError, match="no 'qres' magic"):
        RccArchive(b"PK\x03\x04" + b"\0" * 40)
    truncated = build_rcc(3, {"a.txt": (b"hello", False)})[:-6]
    with pytest.raises(RccError):
        RccArchive(truncated).paths()
    with pytest.raises(RccError, match="unsupported rcc version 9"):
        RccArchive(b"qres" + struct.pack(">IIII", 9, 0, 0, 0))
