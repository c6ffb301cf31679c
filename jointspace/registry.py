"""Plugins by name through Python entry points, so a user's own model or feed plugs in without core changes.

Groups: `jointspace.text_encoders`, `jointspace.image_encoders`, `jointspace.sources`,
`jointspace.bundles`. The built-in implementations register the same way (see pyproject.toml).
A setting that names a plugin (`JOINTSPACE_BUNDLE_FACTORY`) takes an entry point's name or an
entry point's value written out (`module:function`); both load through `reference`.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from jointspace.errors import ConfigurationError

TEXT_ENCODERS = "jointspace.text_encoders"
IMAGE_ENCODERS = "jointspace.image_encoders"
SOURCES = "jointspace.sources"
BUNDLES = "jointspace.bundles"  # factories (Settings → ModelBundle) for a user's own model


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


def reference(group: str, spec: str) -> Any:
    """`spec` as an entry point of `group` by name, or, when it holds a colon, as an entry point's
    value (`package.module:function`) loaded the same way without being installed. Raises
    ConfigurationError saying what failed."""
    if ":" not in spec:
        return load(group, spec)
    try:
        return EntryPoint(name=spec, value=spec, group=group).load()
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigurationError(f"{spec!r} ({group}): {type(exc).__name__}: {exc}") from exc
