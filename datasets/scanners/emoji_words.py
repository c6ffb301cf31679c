"""Words shared by the emoji scanners: an emoji's name, tags and group turned into label words."""

from __future__ import annotations

from collections.abc import Iterable

from jointspace.datasets.text import content_words, hashtag, unique

# Words that say how an emoji is encoded or grouped, not what it shows.
EMOJI_NOISE = frozenset(
    {
        "emoji",
        "emojis",
        "extras",
        "unicode",
        "openmoji",
        "component",
        "symbol",
        "symbols",
        "sign",
        "other",
        "type",
        "selector",
        "variation",
        "keycap",
        "regional",
        "indicator",
        "letter",
        "skin",
        "tone",
        "medium",
        "light",
        "dark",
        "modifier",
        "fitzpatrick",
        "subdivision",
        "misc",
        "icon",
    }
)
# Two-letter words that are words; other two-letter tokens are country or language codes (`flag-eg`).
SHORT_WORDS = frozenset({"ox", "tv", "ok", "cd", "dj", "id", "pc", "ab", "up", "uk", "us", "ufo"})


def label_words(*texts: str | Iterable[str]) -> tuple[str, ...]:
    """Content words of names, tags and group names, emoji noise removed, in order, once each."""
    out: list[str] = []
    for text in texts:
        for part in [text] if isinstance(text, str) else text:
            out += [
                w
                for w in content_words(part.replace(":", " "))
                if w not in EMOJI_NOISE and (len(w) > 2 or w in SHORT_WORDS) and not any(c.isdigit() for c in w)
            ]
    return unique(out)


def tags_of(*texts: str | Iterable[str]) -> tuple[str, ...]:
    """Hashtags: each tag or name phrase as one tag (`ice cream` → `ice_cream`), noise removed."""
    out: list[str] = []
    for text in texts:
        for part in [text] if isinstance(text, str) else text:
            tag = hashtag(part.replace(":", " "))
            if tag and tag not in EMOJI_NOISE:
                out.append(tag)
    return unique(out)


def sentence(name: str) -> str:
    """`flag: Peru` → `Flag: Peru`; `grinning face` → `Grinning face`."""
    name = " ".join(name.split())
    return name[:1].upper() + name[1:]
