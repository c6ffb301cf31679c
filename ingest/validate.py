"""Raw post dicts → validated `Post` records: required fields, normalisation, a stable id.

A post that cannot be accepted raises `InvalidPost` naming the field and the reason; the caller
adds the line number and sends it to the dead letters. Nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from jointspace.errors import JointspaceError
from jointspace.records import Post
from jointspace.settings import Settings

# `#` then letters/digits/underscore in any script; `\w` is unicode-aware in Python 3.
_HASHTAG = re.compile(r"(?<![\w&])#(\w+)", re.UNICODE)
_ID_BYTES = 8  # 16 hex characters: collisions need ~4e9 posts before they become likely.
_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # a str holds pairs as one code point: any left is lone
# C0 and C1 controls but tab, newline and carriage return, and DEL: nothing a caption means, and
# on a terminal an escape sequence (retitle the window, clear the screen).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class InvalidPost(JointspaceError, ValueError):
    """A post that cannot be ingested. `field` names the culprit; `line` is 1-based when known."""

    def __init__(self, field: str, reason: str, line: int | None = None, source: str | None = None) -> None:
        self.field = field
        self.reason = reason
        self.line = line
        self.source = source
        super().__init__(self.describe())

    def describe(self) -> str:
        where = f"{self.source or 'input'}:{self.line}: " if self.line is not None else ""
        return f"{where}{self.field}: {self.reason}"

    def at(self, line: int | None, source: str | None) -> InvalidPost:
        return InvalidPost(self.field, self.reason, line=line, source=source)


@dataclass(frozen=True, slots=True)
class ValidationLimits:
    max_caption_chars: int
    max_image_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ValidationLimits:
        return cls(max_caption_chars=settings.caption_max_chars, max_image_bytes=settings.image_max_bytes)


def parse_hashtags(caption: str) -> tuple[str, ...]:
    """`#Tag` → `tag`, in order of first appearance, lower-cased, unicode-aware (`#café`, `#東京`)."""
    seen: dict[str, None] = {}
    for match in _HASHTAG.finditer(caption):
        seen.setdefault(match.group(1).casefold(), None)
    return tuple(seen)


def normalise_hashtags(tags: Any) -> tuple[str, ...]:
    """A post's `hashtags` list → tags as a caption's `#words` give them: case-folded, without the
    `#`, in order of first appearance, no empty one. A hashtag holds no space (a caption's `#new
    york` is the tag `new`), so an entry with whitespace inside is read as several tags: `"beach
    sunset"` and `"#beach #sunset"` are `beach` and `sunset`; the post is kept either way."""
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) for t in tags):
        raise InvalidPost("hashtags", "must be a list of strings")
    seen: dict[str, None] = {}
    for tag in tags:
        for word in tag.split():
            clean = word.lstrip("#").strip().casefold()  # as Filters reads a tag filter
            if clean:
                seen.setdefault(clean, None)
    return tuple(seen)


def normalise_city(city: Any) -> str | None:
    if city is None:
        return None
    if not isinstance(city, str):
        raise InvalidPost("city", "must be a string")
    clean = " ".join(city.split()).lower()
    return clean or None


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 (a trailing `Z` accepted); a naive time is taken as UTC. Always returns UTC."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidPost("created_at", "must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidPost("created_at", f"not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def resolve_image(ref: Any, base_dir: Path | None) -> Path:
    """An image reference (relative to `base_dir`, absolute, or `file://`) → an absolute path."""
    if ref is not None and not isinstance(ref, str):
        raise InvalidPost("image", f"must be a string (a path or file:// URL), not {type(ref).__name__}")
    if ref is None or not ref.strip():
        raise InvalidPost("image", "missing (a path or file:// URL is required)")
    ref = ref.strip()
    if "://" in ref:
        url = urlparse(ref)
        if url.scheme != "file":
            raise InvalidPost("image", f"only local paths and file:// URLs are supported, not {url.scheme}://")
        path = Path(unquote(url.path))
    else:
        try:
            path = Path(ref).expanduser()
        except RuntimeError:  # `~name` of a user this machine does not have
            raise InvalidPost("image", f"{ref.split('/')[0]!r} names no user's home folder") from None
        if not path.is_absolute():
            if base_dir is None:
                raise InvalidPost("image", f"relative path {ref!r} without a base folder (stdin): use an absolute path")
            path = base_dir / path
    if "\x00" in str(path):  # no file name holds one; the OS calls would raise ValueError, not say why
        raise InvalidPost("image", "contains a NUL character")
    return real_path(path)


def real_path(path: Path) -> Path:
    """`path.resolve()`, reusing each folder's resolution for a second: a feed names thousands of
    pictures in a few folders, and resolving walks every component of every path (an lstat each:
    ~0.3 CPU ms a post, bench/ingest.py under py-spy). Only for a second, so that a folder link
    re-pointed during a long run (`current -> 2026-12-01`) is followed, as the picture is only
    read a moment after this anyway."""
    if path.name in ("", ".", ".."):
        return path.resolve()
    candidate = os.path.join(_real_folder(str(path.parent)), path.name)
    return Path(candidate).resolve() if os.path.islink(candidate) else Path(candidate)


_FOLDER_TTL_S = 1.0
_folders: dict[str, tuple[str, float]] = {}  # folder → (its real path, when that expires)


def _real_folder(folder: str) -> str:
    now = time.monotonic()
    known = _folders.get(folder)
    if known is not None and known[1] > now:
        return known[0]
    if len(_folders) > 1024:  # a feed spread over very many folders: start again
        _folders.clear()
    real = os.path.realpath(folder)
    _folders[folder] = (real, now + _FOLDER_TTL_S)
    return real


def image_id(path: Path, max_bytes: int) -> str:
    """The stable id of a post without one: sha256 of its image bytes, truncated."""
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                size += len(chunk)
                if size > max_bytes:
                    raise InvalidPost("image", f"larger than image_max_bytes ({max_bytes} bytes)")
                digest.update(chunk)
    except FileNotFoundError:
        raise InvalidPost("image", f"file not found: {path}") from None
    except OSError as exc:  # a folder, no permission, a name too long, ...
        raise InvalidPost("image", f"cannot read {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()[: 2 * _ID_BYTES]


def normalise_id(value: Any) -> str:
    post_id = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if not post_id or not _ID_PATTERN.match(post_id):
        raise InvalidPost("id", "must be 1-128 characters of letters, digits, '.', '_', ':' or '-'")
    return post_id


def _optional_text(raw: Mapping[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise InvalidPost(name, "must be a string")
    return str(value).strip() or None


def _clean_text(value: Any, controls: bool = True) -> Any:
    """JSON's `\\ud800` escapes decode to lone surrogates, which no UTF-8 store can write: each
    becomes U+FFFD, as a stray byte in a file does, instead of failing the batch at write time.
    Control characters are dropped (`_CONTROL`) unless `controls` is False."""
    if isinstance(value, str):
        value = _LONE_SURROGATE.sub("\ufffd", value)
        return _CONTROL.sub("", value) if controls else value
    if isinstance(value, list):
        return [_clean_text(item, controls) for item in value]
    return value


def validate_post(raw: Any, base_dir: Path | None, limits: ValidationLimits, default_source: str | None = None) -> Post:
    """One raw JSON object → a `Post`. Raises `InvalidPost`. Extra fields are ignored.

    Reads the image file only when the post has no id (to hash it).
    """
    if not isinstance(raw, Mapping):
        raise InvalidPost("post", f"must be a JSON object, not {type(raw).__name__}")
    # A file name is the file's own: its controls stay (a NUL is refused below).
    raw = {key: _clean_text(value, controls=key != "image") for key, value in raw.items()}
    caption = raw.get("caption") or ""
    if not isinstance(caption, str):
        raise InvalidPost("caption", "must be a string")
    caption = caption.strip()
    if len(caption) > limits.max_caption_chars:
        raise InvalidPost("caption", f"longer than {limits.max_caption_chars} characters ({len(caption)})")
    image = resolve_image(raw.get("image"), base_dir)
    hashtags = normalise_hashtags(raw["hashtags"]) if raw.get("hashtags") is not None else parse_hashtags(caption)
    post_id = normalise_id(raw["id"]) if raw.get("id") not in (None, "") else image_id(image, limits.max_image_bytes)
    return Post(
        id=post_id,
        image=str(image),
        caption=caption,
        hashtags=hashtags,
        city=normalise_city(raw.get("city")),
        created_at=parse_time(raw.get("created_at")),
        author=_optional_text(raw, "author"),
        source=_optional_text(raw, "source") or default_source,
    )
