"""Images served from the allowed media roots only, and their thumbnails, cached on disk.

A post's image ref comes from whoever ingested it, so it is untrusted: it is resolved (symlinks
followed) and served only when the real path lies below an allowed root (`jointspace.media_roots`:
the configured media root, the uploads folder, the folders `jointspace ingest` recorded with the
index). Anything else is "not found" to the client, with a reason that never depends on whether a
path outside the roots exists.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from jointspace.atomic_write import atomic_open
from jointspace.images import on_white, shrink_longer_side, upright
from jointspace.media_roots import below_any, configured_root, fixed_roots, ref_to_path
from jointspace.settings import Settings

log = logging.getLogger(__name__)
# Roots recorded with the index are re-read at most this often: a `jointspace ingest` running beside
# `serve` makes its pictures servable within seconds, without a request per image to the backend.
RECORDED_ROOTS_TTL_S = 2.0

# Raster formats a browser shows safely. SVG is refused on purpose: served from our origin it
# could run script.
SAFE_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif", "BMP": "image/bmp"}


class MediaNotFound(LookupError):
    """The image is missing, outside the allowed roots, or not a raster image we serve.

    `reason` is safe to show to a client: it never says whether a path outside the roots exists.
    """

    def __init__(self, ref: str, reason: str = "not available") -> None:
        super().__init__(ref)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class MediaFile:
    path: Path
    media_type: str
    etag: str
    stat: os.stat_result


def media_root(settings: Settings) -> Path:
    """The configured media root (relative image refs of `POST /posts` are taken from it)."""
    return configured_root(settings)


def thumbnail_dir(settings: Settings) -> Path:
    return settings.home.expanduser() / "cache" / "thumbnails"


def _etag(stat: os.stat_result, extra: str = "") -> str:
    base = f"{stat.st_mtime_ns}-{stat.st_size}-{extra}"
    return '"' + hashlib.sha256(base.encode()).hexdigest()[:32] + '"'


NOT_RASTER = "not a picture that is served (JPEG, PNG, WebP, GIF or BMP; SVG never)"
OUTSIDE = "outside the allowed media roots (see `jointspace media roots`)"


class MediaStore:
    """Looks up post images below the allowed roots and makes thumbnails of them.

    `recorded` returns the roots recorded with the index (the backend's `media_roots`); it is
    called at most every RECORDED_ROOTS_TTL_S seconds, and when it fails the last answer stays.
    """

    def __init__(self, settings: Settings, recorded: Callable[[], Sequence[str]] | None = None) -> None:
        self.root = media_root(settings)
        self.fixed = fixed_roots(settings)
        self.thumbs = thumbnail_dir(settings)
        self.thumbnail_px = settings.api_thumbnail_px
        self.max_pixels = settings.image_max_pixels
        self._recorded = recorded
        self._recorded_roots: list[Path] = []
        self._recorded_at = float("-inf")
        self._lock = threading.Lock()

    def roots(self) -> list[Path]:
        """Every allowed root: the configured one, the uploads folder, and those recorded with the index."""
        if self._recorded is not None and time.monotonic() - self._recorded_at > RECORDED_ROOTS_TTL_S:
            with self._lock:
                if time.monotonic() - self._recorded_at > RECORDED_ROOTS_TTL_S:
                    try:
                        self._recorded_roots = [Path(p) for p in self._recorded()]
                    except Exception:  # a backend hiccup must not stop serving known roots
                        log.warning("could not read the recorded media roots; using the last known ones", exc_info=True)
                    self._recorded_at = time.monotonic()
        return self.fixed + self._recorded_roots

    def contains(self, path: Path) -> bool:
        return below_any(path, self.roots())

    def resolve(self, image_ref: str) -> Path:
        """The real file for an image ref. Raises MediaNotFound (with the reason) unless it is a
        regular file below an allowed root."""
        raw = ref_to_path(image_ref)
        if raw is None or not raw.is_absolute() or "\x00" in str(raw):
            raise MediaNotFound(image_ref, "not a local file path")
        # Containment is decided on the path with its existing symlinks followed, before asking
        # whether the file exists: outside the roots the answer is the same either way.
        try:
            if not self.contains(raw.resolve(strict=False)):
                raise MediaNotFound(image_ref, OUTSIDE)
            real = raw.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise MediaNotFound(image_ref, "the picture file is missing") from exc
        if not self.contains(real):
            raise MediaNotFound(image_ref, OUTSIDE)
        if not real.is_file():
            raise MediaNotFound(image_ref, "not a regular file")
        return real

    def original(self, image_ref: str) -> MediaFile:
        path = self.resolve(image_ref)
        media_type = self._sniff(path)
        stat = path.stat()
        return MediaFile(path, media_type, _etag(stat), stat)

    def thumbnail(self, image_ref: str) -> MediaFile:
        """A JPEG at most `api_thumbnail_px` on a side, made once and cached by content version."""
        source = self.resolve(image_ref)
        stat = source.stat()
        key = hashlib.sha256(f"{source}\0{stat.st_mtime_ns}\0{stat.st_size}\0{self.thumbnail_px}".encode()).hexdigest()
        target = self.thumbs / key[:2] / f"{key}.jpg"
        if not target.exists():
            self._make_thumbnail(source, target)
        tstat = target.stat()
        return MediaFile(target, "image/jpeg", _etag(tstat, key), tstat)

    def _sniff(self, path: Path) -> str:
        # The content type comes from the bytes, not the file name: a mislabelled file is still
        # served as what it is, and a non-image is refused.
        try:
            with Image.open(path) as img:
                fmt = img.format
        except (OSError, Image.DecompressionBombError) as exc:
            raise MediaNotFound(str(path), NOT_RASTER) from exc
        if fmt not in SAFE_MIME:
            raise MediaNotFound(str(path), NOT_RASTER)
        return SAFE_MIME[fmt]

    def _make_thumbnail(self, source: Path, target: Path) -> None:
        try:
            with Image.open(source) as img:
                if img.format not in SAFE_MIME:
                    raise MediaNotFound(str(source), NOT_RASTER)
                if img.width * img.height > self.max_pixels:
                    raise MediaNotFound(str(source), "too many pixels for a thumbnail (JOINTSPACE_IMAGE_MAX_PIXELS)")
                img.draft("RGB", (self.thumbnail_px, self.thumbnail_px))  # JPEG: decode at reduced size
                thumb = on_white(shrink_longer_side(upright(img), self.thumbnail_px))
        except MediaNotFound:
            raise
        except (OSError, Image.DecompressionBombError, ValueError) as exc:
            raise MediaNotFound(str(source), NOT_RASTER) from exc
        # Write then rename: two requests racing for the same thumbnail never see half a file.
        with atomic_open(target, "wb") as fh:
            thumb.save(fh, "JPEG", quality=85, optimize=True)
