"""Images served from the media root only, and their thumbnails, cached on disk.

A post's image ref comes from whoever ingested it, so it is untrusted: it is resolved (symlinks
followed) and served only when the real path lies below the media root. Anything else is "not
found" to the client, so the API never reveals whether a path outside the root exists.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from PIL import Image, ImageOps

from jointspace.settings import Settings

# Raster formats a browser shows safely. SVG is refused on purpose: served from our origin it
# could run script.
SAFE_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif",
             "BMP": "image/bmp"}


class MediaNotFound(LookupError):
    """The image is missing, outside the media root, or not a raster image we serve."""


@dataclass(frozen=True, slots=True)
class MediaFile:
    path: Path
    media_type: str
    etag: str
    stat: os.stat_result


def media_root(settings: Settings) -> Path:
    return (settings.media_root or settings.data_dir).expanduser().resolve()


def thumbnail_dir(settings: Settings) -> Path:
    return settings.home.expanduser() / "cache" / "thumbnails"


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


def _etag(stat: os.stat_result, extra: str = "") -> str:
    base = f"{stat.st_mtime_ns}-{stat.st_size}-{extra}"
    return '"' + hashlib.sha256(base.encode()).hexdigest()[:32] + '"'


class MediaStore:
    """Looks up post images below the media root and makes thumbnails of them."""

    def __init__(self, settings: Settings) -> None:
        self.root = media_root(settings)
        self.thumbs = thumbnail_dir(settings)
        self.thumbnail_px = settings.api_thumbnail_px
        self.max_pixels = settings.image_max_pixels

    def contains(self, path: Path) -> bool:
        return path.is_relative_to(self.root)

    def resolve(self, image_ref: str) -> Path:
        """The real file for an image ref. Raises MediaNotFound unless it is a file below the root."""
        raw = ref_to_path(image_ref)
        if raw is None or not raw.is_absolute() or "\x00" in str(raw):
            raise MediaNotFound(image_ref)
        try:
            real = raw.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise MediaNotFound(image_ref) from exc
        if not self.contains(real) or not real.is_file():
            raise MediaNotFound(image_ref)
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
            raise MediaNotFound(str(path)) from exc
        if fmt not in SAFE_MIME:
            raise MediaNotFound(str(path))
        return SAFE_MIME[fmt]

    def _make_thumbnail(self, source: Path, target: Path) -> None:
        try:
            with Image.open(source) as img:
                if img.format not in SAFE_MIME or img.width * img.height > self.max_pixels:
                    raise MediaNotFound(str(source))
                img.draft("RGB", (self.thumbnail_px, self.thumbnail_px))  # JPEG: decode at reduced size
                img = ImageOps.exif_transpose(img)
                img.thumbnail((self.thumbnail_px, self.thumbnail_px), Image.Resampling.LANCZOS)
                thumb = _on_white(img)
        except (OSError, Image.DecompressionBombError, ValueError) as exc:
            raise MediaNotFound(str(source)) from exc
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: two requests racing for the same thumbnail never see half a file.
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                thumb.save(fh, "JPEG", quality=85, optimize=True)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _on_white(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, "white")
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return img.convert("RGB")
