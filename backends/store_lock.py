"""Which processes have an embedded store open, so that a restore or a reindex never swaps it
under them.

Each open store holds a shared `flock` on `<store>/.open.lock` for its lifetime; the kernel drops it
when the process dies (kill -9 included), so a stale lock cannot refuse a restore forever. A
restore asks for the exclusive lock without waiting: taken, nobody has the store open.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from jointspace.errors import ConfigurationError

LOCK_NAME = ".open.lock"


class OpenLock:
    """The shared lock of one open store; `release()` on close."""

    def __init__(self, folder: Path) -> None:
        self._fd: int | None = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_SH)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def in_use(folder: Path) -> bool:
    """Whether any process (this one included) holds the store in `folder` open."""
    path = folder / LOCK_NAME
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def refuse_if_in_use(folder: Path, then: str) -> None:
    """ConfigurationError when another process holds the store: swapped under it, that process
    would go on reading and writing the folder under its retired name."""
    if in_use(folder):
        raise ConfigurationError(
            f"the embedded store in {folder} is open in another process "
            f"(`jointspace serve`, an ingest or a worker): stop them, then {then}; nothing was changed"
        )
