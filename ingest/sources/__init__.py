"""Where posts come from. Each source is a plugin in the `jointspace.sources` entry-point group:
a factory `(target: str, settings: Settings, **options) -> Source`."""
from __future__ import annotations

from typing import Any

from jointspace import registry
from jointspace.ingest.sources.base import Source, SourceItem
from jointspace.settings import Settings

__all__ = ["Source", "SourceItem", "open_source"]


def open_source(kind: str, target: str, settings: Settings, **options: Any) -> Source:
    """The source plugin named `kind` reading `target` (a path, `-`, or a stream key)."""
    return registry.load(registry.SOURCES, kind)(target, settings, **options)
