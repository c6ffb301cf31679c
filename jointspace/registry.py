"""Plugins by name through Python entry points, so a user's own model or feed plugs in without core changes.

Groups: `jointspace.text_encoders`, `jointspace.image_encoders`, `jointspace.sources`. The built-in
implementations register the same way (see pyproject.toml).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from jointspace.errors import ConfigurationError

TEXT_ENCODERS = "jointspace.text_encoders"
IMAGE_ENCODERS = "jointspace.image_encoders"
SOURCES = "jointspace.sources"


def available(group: str) -> list[str]:
    return sorted(ep.name for ep in entry_points(group=group))


def load(group: str, name: str) -> Any:
    """The object an entry point names (usually a factory). Raises ConfigurationError listing the choices."""
    for ep in entry_points(group=group):
        if ep.name == name:
            return ep.load()
    raise ConfigurationError(
        f"no {group.rsplit('.', 1)[-1][:-1].replace('_', ' ')} named {name!r}; "
        f"available: {', '.join(available(group)) or 'none'}"
    )
