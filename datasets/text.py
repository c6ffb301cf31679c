"""Turning package metadata (titles, keyword lists, folder names, descriptions) into words and hashtags."""
from __future__ import annotations

import re
from collections.abc import Iterable

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

# Metadata noise that says nothing about the picture (editor tags, licences, collection names).
NOISE_WORDS = frozenset({
    "", "hash", "magick", "unsorted", "lemon_theme_icon", "mapsym", "mimetypes", "mime", "types",
    "openclipart", "clipart", "clip", "art", "svg", "png", "image", "media", "public", "domain",
    "remix", "externalsource", "special", "untagged", "cartoon", "mirror",
})
_WORD = re.compile(r"[a-z0-9]+(?:['_][a-z0-9]+)*")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits), in order."""
    return _WORD.findall(text.lower().replace("-", " "))


def content_words(text: str) -> list[str]:
    """Words that carry meaning: no stop words, no metadata noise, no bare numbers, no single letters."""
    return [w for w in words(text.replace("_", " "))
            if w not in ENGLISH_STOP_WORDS and w not in NOISE_WORDS and len(w) > 1 and not w.isdigit()]


def hashtag(text: str) -> str | None:
    """One Instagram-style tag (`[a-z0-9_]`), or None when nothing meaningful is left."""
    tag = "_".join(words(text))
    if not tag or tag in NOISE_WORDS or tag.isdigit() or len(tag) < 2:
        return None
    return tag


def unique(items: Iterable[str]) -> tuple[str, ...]:
    """Order-keeping de-duplication."""
    return tuple(dict.fromkeys(i for i in items if i))


def category_words(category: str) -> list[str]:
    """The meaningful words of a folder path such as `animals/birds` or `signs_and_symbols`."""
    return list(unique(content_words(category.replace("/", " "))))


def one_line(text: str, max_chars: int = 240) -> str:
    """Whitespace collapsed, cut at a word boundary near `max_chars`."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    return text[:max_chars].rsplit(" ", 1)[0] + "…"
