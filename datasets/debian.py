"""Debian packages as data: downloaded with `apt-get download` and unpacked with `dpkg -x`, never installed."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from jointspace.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class UnpackedPackage:
    name: str
    deb: Path
    sha256: str
    root: Path  # the unpacked tree (holds usr/share/...)


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True)


def _find_deb(cache_dir: Path, package: str) -> Path | None:
    debs = sorted(cache_dir.glob(f"{package}_*.deb"))
    return debs[-1] if debs else None


def download(package: str, cache_dir: Path) -> Path:
    """The package's .deb in `cache_dir`, fetched once. Runs `apt-get update` and retries if apt cannot find it."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    deb = _find_deb(cache_dir, package)
    if deb is not None:
        return deb
    if shutil.which("apt-get") is None:
        raise ConfigurationError(f"apt-get is needed to fetch {package}; put {package}_*.deb into {cache_dir}")
    result = _run(["apt-get", "download", package], cache_dir)
    if result.returncode != 0:
        _run(["apt-get", "update"], cache_dir)
        result = _run(["apt-get", "download", package], cache_dir)
    deb = _find_deb(cache_dir, package)
    if result.returncode != 0 or deb is None:
        raise ConfigurationError(f"apt-get download {package} failed: {result.stderr.strip()[-500:]}")
    return deb


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unpack(package: str, cache_dir: Path, packages_dir: Path) -> UnpackedPackage:
    """Download (cached) and unpack into `packages_dir/<package>`; re-unpacks only when the .deb changed."""
    deb = download(package, cache_dir)
    digest = sha256_of(deb)
    root = packages_dir / package
    stamp = root / ".deb-sha256"
    if not (stamp.is_file() and stamp.read_text().strip() == digest):
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        result = _run(["dpkg", "-x", str(deb), str(root)], packages_dir)
        if result.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            raise ConfigurationError(f"dpkg -x {deb.name} failed: {result.stderr.strip()[-500:]}")
        stamp.write_text(digest + "\n")
    return UnpackedPackage(name=package, deb=deb, sha256=digest, root=root)
