"""What every source yields, and how it learns that a post is safely settled."""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from jointspace.ingest.validate import InvalidPost, ValidationLimits, validate_post

from jointspace.records import Post


@dataclass(frozen=True, slots=True)
class SourceItem:
    """One post read from a source: validated (`post`) or refused (`error`), never both.

    `raw` is the original object (for the dead letters), `origin` says where it came from
    (`file.jsonl:12`), `token` is what `Source.ack` takes back once the post is settled.
    """

    origin: str
    token: Hashable
    post: Post | None = None
    error: InvalidPost | None = None
    raw: Any = None
    base_dir: str | None = None


class Source(Protocol):
    name: str

    def __iter__(self) -> Iterator[SourceItem]:
        """Yields posts as they come; a continuous source blocks for new ones until it is stopped."""
        ...

    def ack(self, tokens: Sequence[Hashable]) -> None:
        """These items are indexed or dead-lettered: a durable source may forget them now."""
        ...

    def close(self) -> None: ...


def json_error_reason(line: str, exc: json.JSONDecodeError) -> str:
    """`not valid JSON (Expecting ',' delimiter at column 64)`: the 1-based character of the line
    (json's own column restarts after the line's newline, so a line cut short read as column 1)."""
    text = line.rstrip("\r\n")
    where = "the end of the line" if exc.pos >= len(text) else f"column {exc.pos + 1}"
    return f"not valid JSON ({exc.msg} at {where})"


def json_line_reason(text: str) -> str | None:
    """Why a stored line is not JSON (the same words as when it was read), or None if it is."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return json_error_reason(text, exc)
    return None


def items_from_lines(
    lines: Iterable[str],
    origin: str,
    base_dir: Path | None,
    limits: ValidationLimits,
    default_source: str | None,
    first_line: int = 1,
) -> Iterator[SourceItem]:
    """JSONL lines → items. Blank lines are skipped; a bad line becomes an item with its error."""
    base = str(base_dir) if base_dir else None
    for number, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        where = f"{origin}:{number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            yield SourceItem(
                where,
                number,
                error=InvalidPost("json", json_error_reason(line, exc), number, origin),
                raw=line.rstrip("\n")[:10_000],
                base_dir=base,
            )
            continue
        try:
            post = validate_post(raw, base_dir, limits, default_source=default_source)
            yield SourceItem(where, number, post=post, raw=raw, base_dir=base)
        except InvalidPost as exc:
            yield SourceItem(where, number, error=exc.at(number, origin), raw=raw, base_dir=base)
