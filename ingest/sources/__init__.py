"""Where posts come from. Each source is a plugin in the `jointspace.sources` entry-point group:
a factory `(target: str, settings: Settings, **options) -> Source`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jointspace.ingest.sources.base import Source, SourceItem

from jointspace import registry
from jointspace.errors import ConfigurationError
from jointspace.settings import Settings

__all__ = ["Source", "SourceItem", "guess_kind", "open_source"]


def guess_kind(target: str) -> str:
    """The source plugin a target calls for: `-` or a file → jsonl; a folder with `img_resized/` or
    `img/` → instacities; another folder → watch."""
    if target == "-":
        return "jsonl"
    path = Path(target)
    if path.is_file():
        return "jsonl"
    if path.is_dir():
        return "instacities" if (path / "img_resized").is_dir() or (path / "img").is_dir() else "watch"
    raise ConfigurationError(f"{target}: no such file or folder (for a Redis stream, pass --source redis-stream)")


def open_source(kind: str, target: str, settings: Settings, **options: Any) -> Source:
    """The source plugin named `kind` reading `target` (a path, `-`, or a stream key)."""
    source: Source = registry.load(registry.SOURCES, kind)(target, settings, **options)  # an entry point: untyped
    return source
