"""`... WHERE id IN (?, ?, ...)` over many ids: SQLite caps the number of bound parameters in one
statement, so the ids go in chunks, each with its own placeholder list.

    for chunk in id_chunks(post_ids):
        db.execute(f"SELECT ... WHERE id IN ({placeholders(chunk)})", chunk)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sized
from typing import TypeVar

CHUNK = 500  # well under SQLite's limit on bound parameters (999 before 3.32)

T = TypeVar("T")


def id_chunks(ids: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """`ids` in order, as lists of at most `size` (none when `ids` is empty); no de-duplication."""
    values = list(ids)
    for start in range(0, len(values), size):
        yield values[start : start + size]


def placeholders(values: Sized) -> str:
    """`?,?,...`: one placeholder per value, for an `IN (...)` list."""
    return ",".join("?" * len(values))
