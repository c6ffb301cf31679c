"""The model bundles a home can use, where they are, and which one the index holds.

`jointspace model list` prints this; `jointspace reindex --bundle NAME` finds its target here.
Only manifests are read: no model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jointspace.encoders.bundle import (
    MANIFEST,
    ZEROSHOT_NAME,
    ensure_zeroshot_bundle,
    latest_bundle_dir,
    read_manifest,
    resolve_bundle_dir,
    shipped_bundle_dir,
)

from jointspace.errors import ConfigurationError, JointspaceError
from jointspace.settings import Settings


@dataclass(frozen=True, slots=True)
class BundleInfo:
    name: str
    folder: Path
    dim: int
    kind: str  # "shipped", "zero-training", "trained" or "imported" (`model import open-clip`)
    default: bool  # the one search, serve and ingest load (JOINTSPACE_MODEL, last trained, shipped, zero)
    in_index: bool  # the index holds this bundle's vectors
    created: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "folder": str(self.folder),
            "dim": self.dim,
            "kind": self.kind,
            "default": self.default,
            "index": self.in_index,
            "created": self.created,
        }


@dataclass(frozen=True, slots=True)
class Catalog:
    bundles: list[BundleInfo]
    index_model: str | None  # the bundle name the index records; None: no index yet (or unreadable)
    index_dim: int | None
    index_note: str | None  # why the index could not be read, when it could not

    def to_json(self) -> dict[str, Any]:
        index = None if self.index_model is None else {"model": self.index_model, "dim": self.index_dim}
        return {
            "bundles": [b.to_json() for b in self.bundles],
            "index": index,
            **({"index_note": self.index_note} if self.index_note else {}),
        }

    def find(self, name_or_folder: str) -> Path:
        """A bundle folder by name or by folder; ConfigurationError listing the choices."""
        path = Path(name_or_folder).expanduser()
        # A folder is taken as it is even without a manifest: a user's own bundle factory
        # (JOINTSPACE_BUNDLE_FACTORY) reads folders of its own making, and loading says what is wrong.
        if path.is_dir():
            return path
        for bundle in self.bundles:
            if bundle.name == name_or_folder:
                return bundle.folder
        names = ", ".join(b.name for b in self.bundles)
        raise ConfigurationError(
            f"no model bundle named or at {name_or_folder!r}; known: {names} "
            "(`jointspace model list` shows their folders)"
        )


def _candidates(settings: Settings) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    shipped = shipped_bundle_dir()
    if shipped is not None:
        found.append((shipped, "shipped"))
    # Written here if it is not yet: a manifest only (the models load on first use), so the
    # zero-training bundle is always there to list and to reindex into.
    found.append((ensure_zeroshot_bundle(settings), "zero-training"))
    others = [settings.model, latest_bundle_dir(settings)]
    if settings.models_dir.is_dir():
        others += sorted(p for p in settings.models_dir.iterdir() if (p / MANIFEST).is_file())
    found += [(Path(p), "trained") for p in others if p is not None]
    return found


def catalog(settings: Settings) -> Catalog:
    """Every bundle this home can use (shipped, zero-training, trained under the models folder,
    JOINTSPACE_MODEL), marked with the default and the one the index holds."""
    from jointspace.backends import recorded_model

    note = None
    try:
        recorded = recorded_model(settings)
    except JointspaceError as exc:  # Elasticsearch down: list the bundles anyway, and say why
        recorded, note = None, str(exc)
    default = resolve_bundle_dir(None, settings).resolve()
    bundles: list[BundleInfo] = []
    seen: set[Path] = set()
    for folder, kind in _candidates(settings):
        folder = folder.resolve()
        if folder in seen:
            continue
        seen.add(folder)
        manifest = read_manifest(folder)
        name = str(manifest["name"])
        if kind == "trained" and name == ZEROSHOT_NAME:
            kind = "zero-training"
        elif kind == "trained" and (manifest.get("source") or {}).get("kind") == "open-clip":
            kind = "imported"
        bundles.append(
            BundleInfo(
                name=name,
                folder=folder,
                dim=int(manifest["dim"]),
                kind=kind,
                default=folder == default,
                in_index=recorded is not None and recorded[0] == name,
                created=manifest.get("created"),
            )
        )
    return Catalog(bundles, recorded[0] if recorded else None, recorded[1] if recorded else None, note)
