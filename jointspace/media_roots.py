"""Which folders' pictures may be served: the rule shared by `jointspace ingest` (which records
folders), the API (which serves from them) and `jointspace media roots` (which shows and edits them).

Allowed roots are
- the configured media root (`JOINTSPACE_MEDIA_ROOT`, default: the data folder),
- the uploads folder under the home (`POST /posts` stores uploaded bytes there by content hash),
- the folders recorded with the index: those holding the pictures a `jointspace ingest` read.

A folder is recorded only when an ingested post's picture is a regular file in it, and never when
it is too broad to be a picture folder (`/`, a top-level folder such as `/tmp`, the user's home
or one of its parents): serving every picture below it would expose far more than the user
ingested. Such pictures stay unserved until their folder is added by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlparse

from jointspace.settings import Settings

UPLOADS = "uploads"


def configured_root(settings: Settings) -> Path:
    return (settings.media_root or settings.data_dir).expanduser().resolve()


def uploads_dir(settings: Settings) -> Path:
    """Where uploaded pictures are stored, named by their SHA-256 (under the home folder)."""
    return (settings.home.expanduser() / UPLOADS).resolve()


def fixed_roots(settings: Settings) -> list[Path]:
    return [configured_root(settings), uploads_dir(settings)]


def ref_to_path(image_ref: str) -> Path | None:
    """A local path for an image ref (absolute path or file:// URL); None for anything else."""
    if image_ref.startswith("file:"):
        parsed = urlparse(image_ref)
        if parsed.netloc not in ("", "localhost"):
            return None
        return Path(unquote(parsed.path))
    if "://" in image_ref:
        return None
    return Path(image_ref)


def below_any(path: Path, roots: Iterable[Path]) -> bool:
    return any(path.is_relative_to(root) for root in roots)


def too_broad(folder: Path) -> str | None:
    """Why `folder` may not be recorded automatically, or None when it may."""
    if len(folder.parts) <= 2:
        return f"{folder} is a top-level folder"
    home = Path.home().resolve()
    if home.is_relative_to(folder):
        return f"{folder} holds the home folder {home}"
    return None


def folder_to_record(image: Path) -> Path | None:
    """The resolved folder of an ingested picture, when it may become a root; None otherwise."""
    try:
        real = image.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not real.is_file():
        return None
    folder = real.parent
    return None if too_broad(folder) else folder
