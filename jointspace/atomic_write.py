"""Atomic file writes: a reader sees the old file or the new one, never half of one.

The bytes go to a temporary file in the target's own folder (a rename is atomic only within one
file system), are fsynced, then renamed over the target; on any error the temporary file is
removed. Temporary names are `<target name>.<random>.<pid><suffix>`: unique per writer (threads
racing for the same thumbnail never share one) and carrying the pid, so a clean-up can tell the
leftovers of a killed process (`backends/ann_index.remove_stale`). Hand-written because the
standard library has no such helper and the few lines do not warrant a dependency.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    """The rename itself is durable only once the folder is synced (not possible on every OS)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(target: Path | str, suffix: str = ".tmp") -> Iterator[Path]:
    """A fresh temporary path beside `target` to write to (with any library that takes a path);
    on leaving without error it is fsynced and renamed over `target`. `suffix` ends the temporary
    name, for writers that insist on one (`np.save` wants `.npy`)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f"{target.name}.", suffix=f".{os.getpid()}{suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(target.parent)


@contextmanager
def atomic_open(
    target: Path | str, mode: str = "w", encoding: str | None = "utf-8", suffix: str = ".tmp"
) -> Iterator[IO[Any]]:
    """An open file whose content replaces `target` atomically when the block ends without error."""
    with atomic_path(target, suffix) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle


def write_text_atomic(target: Path | str, text: str, encoding: str = "utf-8") -> None:
    with atomic_open(target, "w", encoding) as handle:
        handle.write(text)


def write_bytes_atomic(target: Path | str, data: bytes) -> None:
    with atomic_open(target, "wb") as handle:
        handle.write(data)
