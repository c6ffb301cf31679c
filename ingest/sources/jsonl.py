"""Posts from a JSONL file, or from stdin when the target is `-`."""

from __future__ import annotations

import io
import sys
from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any

from jointspace.ingest.sources.base import SourceItem, items_from_lines
from jointspace.ingest.validate import ValidationLimits

from jointspace.errors import ConfigurationError
from jointspace.settings import Settings


class JsonlSource:
    """Image paths resolve relative to the file (stdin: the working directory)."""

    name = "jsonl"

    def __init__(self, target: str, settings: Settings, default_source: str | None = None) -> None:
        self.limits = ValidationLimits.from_settings(settings)
        self.stdin = target == "-"
        self.path = None if self.stdin else Path(target).expanduser().resolve()
        if self.path is not None and not self.path.is_file():
            raise ConfigurationError(f"no such JSONL file: {target}")
        if self.path is not None:
            _refuse_binary(self.path, target)
        self.default_source = default_source

    def __iter__(self) -> Iterator[SourceItem]:
        # UTF-8 whatever the locale, a leading byte-order mark dropped (editors on Windows write
        # one), and errors="replace": a stray byte spoils one line's text, not the run. stdin is
        # read as bytes because its text layer follows the locale (strict, or surrogate escapes
        # under C/POSIX that no store can encode).
        if self.path is None:
            raw = getattr(sys.stdin, "buffer", None)  # None: already text (an embedding program's stdin)
            wrapper = None if raw is None else io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace")
            try:
                yield from items_from_lines(
                    wrapper or sys.stdin, "<stdin>", Path.cwd(), self.limits, self.default_source
                )
            finally:
                if wrapper is not None:
                    wrapper.detach()  # closing the wrapper would close the process's stdin
            return
        with self.path.open(encoding="utf-8-sig", errors="replace") as lines:
            yield from items_from_lines(lines, self.path.name, self.path.parent, self.limits, self.default_source)

    def ack(self, tokens: Sequence[Hashable]) -> None:
        """A file is re-readable: nothing to forget."""

    def close(self) -> None:
        pass


def _refuse_binary(path: Path, target: str) -> None:
    """A picture (or any binary file) given by mistake would otherwise become a dead letter per
    "line" of its bytes. JSONL text in UTF-8 never holds a NUL byte; pictures and UTF-16 text do."""
    with path.open("rb") as handle:
        head = handle.read(8192)
    if b"\x00" in head:
        raise ConfigurationError(
            f"{target} is not a JSONL file of posts (it holds binary data: a picture? UTF-16 text?): "
            "give a UTF-8 file with one JSON post a line, e.g. "
            '{"image": "img/p1.jpg", "caption": "..."}, or a folder to watch for such files'
        )


def jsonl_source(target: str, settings: Settings, **options: Any) -> JsonlSource:
    return JsonlSource(target, settings, default_source=options.get("default_source"))
