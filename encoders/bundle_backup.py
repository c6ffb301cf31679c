"""The model bundle in a backup (`jointspace backup` / `restore`): the index's vectors answer only
queries of the bundle that made them, so a backup restored into a new home, or into an installation
that ships another default bundle, must bring that bundle along or it cannot be searched."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jointspace.errors import ConfigurationError
from jointspace.settings import Settings

from .bundle import MANIFEST, find_bundle_dir, read_manifest, resolve_bundle_dir, set_latest, shipped_bundle_dir

FOLDER = "model_bundle"


@dataclass(frozen=True)
class ModelBundlePart:
    """A `backends.backup.BackupPart`: `model_bundle` in the manifest and the restore report (1 when
    the backup carries the bundle / when the restore installed it, else 0)."""

    settings: Settings
    name: str = "model_bundle"
    files: tuple[str, ...] = (FOLDER,)

    def save(self, folder: Path, model: str) -> int:
        """Copies the folder of the bundle named `model` (the one the index records); 0 when this
        home cannot find it (a bundle moved away, or a user's own `JOINTSPACE_BUNDLE_FACTORY`)."""
        source = find_bundle_dir(self.settings, model)
        if source is None:
            return 0
        staging = folder / f".{FOLDER}.copying"
        try:
            shutil.copytree(source, staging, ignore=_temporaries, copy_function=_copy_unless_gone)
            staging.rename(folder / FOLDER)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return 1

    def check(self, folder: Path, manifest: dict[str, Any]) -> None:
        """The carried bundle is the one that built the backup's index."""
        if not manifest.get(self.name):
            return
        carried = folder / FOLDER
        try:
            name = str(read_manifest(carried)["name"])
        except ConfigurationError as exc:
            raise ConfigurationError(f"the backup's model bundle is damaged ({exc}); nothing was changed") from None
        if name != manifest["model"]:
            raise ConfigurationError(
                f"{carried} holds model bundle {name!r}, but the backup's index was built by "
                f"{manifest['model']!r}: the backup is damaged; nothing was changed"
            )

    def load(self, folder: Path, model: str) -> int:
        """Installs the carried bundle under the models folder when this home lacks one of that
        name, and makes the index's bundle this home's default (`models/latest`) unless
        JOINTSPACE_MODEL chooses one; returns 1 when it installed it."""
        carried = folder / FOLDER
        present = find_bundle_dir(self.settings, model)
        needs_default = default_bundle_name(self.settings) not in (None, model) and self.settings.model is None
        # `latest` never points into the package: an upgrade that ships another bundle would
        # change what it names under the index.
        shipped = shipped_bundle_dir()
        in_package = present is not None and shipped is not None and present == shipped.resolve()
        installed = 0
        if (present is None or (needs_default and in_package)) and (carried / MANIFEST).is_file():
            present = _install(carried, self.settings.models_dir, model)
            installed = 1
        if needs_default and present is not None:
            set_latest(present, self.settings)
        return installed


# A cache written into a bundle on first use (classes.npy) is written beside its final name and
# renamed (`jointspace.atomic_write`: `<name>.<8 random>.<pid><suffix>`): such a file is never part
# of a finished bundle, and may be gone by the time it would be copied.
_TEMPORARY = re.compile(r"^\.|\.[a-z0-9_]{8}\.\d+\.[A-Za-z0-9]+$")


def _temporaries(folder: str, names: list[str]) -> set[str]:
    return {name for name in names if _TEMPORARY.search(name)}


def _copy_unless_gone(source: str, target: str) -> None:
    try:
        shutil.copy2(source, target)
    except FileNotFoundError:
        if Path(source).exists():  # the target's folder, not the source, is missing: a real error
            raise


def _install(carried: Path, models_dir: Path, name: str) -> Path:
    """Copied beside its final place and renamed into it, so a failed copy leaves no half bundle."""
    target = models_dir / name
    if target.exists():  # a folder of that name holding another bundle: keep it
        target = models_dir / f"{name}-restored-{os.getpid()}"
    staging = models_dir / f".{name}.restoring-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    models_dir.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copytree(carried, staging)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def default_bundle_name(settings: Settings) -> str | None:
    """The name of the bundle search and ingest load here (None: a user's own bundle factory)."""
    if settings.bundle_factory is not None:
        return None
    return str(read_manifest(resolve_bundle_dir(None, settings))["name"])
