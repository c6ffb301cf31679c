"""Turning package metadata (titles, keyword lists, folder names, descriptions) into words and hashtags."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

# A plain stop-word list rather than scikit-learn's: importing sklearn costs seconds in every
# `prepare` run and in every rendering process, for a set of words.
ENGLISH_STOP_WORDS = frozenset(
    """
a about above across after afterwards again against all almost alone along already also although always
am among amongst an and another any anyhow anyone anything anyway anywhere are around as at back be became
because become becomes been before beforehand behind being below beside besides between beyond both but by
can cannot could did do does doing done down due during each eg either else elsewhere enough etc even ever
every everyone everything everywhere except few for former formerly from further had has have having he
hence her here hereby herein hers herself him himself his how however i ie if in indeed into is it its
itself just last latter least less many may me meanwhile might mine more moreover most mostly much must my
myself namely neither never nevertheless next no nobody none nor not nothing now nowhere of off often on
once one only onto or other others otherwise our ours ourselves out over own per perhaps please rather
same several she should since so some somehow someone something sometime sometimes somewhere still such
than that the their theirs them themselves then thence there thereafter thereby therefore therein these
they this those though through throughout thru thus to together too toward towards under until up upon us
very via was we well were what whatever when whence whenever where whereas whereby wherein whether which
while whither who whoever whole whom whose why will with within without would yet you your yours yourself
yourselves its it's isn't don't can't won't i'm
""".split()
)

# Metadata noise that says nothing about the picture (editor tags, licences, collection names).
NOISE_WORDS = frozenset(
    {
        "",
        "hash",
        "magick",
        "unsorted",
        "lemon_theme_icon",
        "mapsym",
        "mimetypes",
        "mime",
        "types",
        "openclipart",
        "clipart",
        "clip",
        "art",
        "svg",
        "png",
        "image",
        "media",
        "public",
        "domain",
        "remix",
        "externalsource",
        "special",
        "untagged",
        "cartoon",
        "mirror",
    }
)
_WORD = re.compile(r"[^\W_]+(?:['_][^\W_]+)*")


def fold(text: str) -> str:
    """Lower-cased, accents removed (`Chichén Itzá` → `chichen itza`), so tags match plain typing."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """Lower-cased, accent-folded word tokens (letters and digits of any script), in order."""
    return _WORD.findall(fold(text).replace("-", " ").replace("’", "'"))


def content_words(text: str) -> list[str]:
    """Words that carry meaning: no stop words, no metadata noise, no bare numbers, no single letters."""
    return [
        w
        for w in words(text.replace("_", " "))
        if w not in ENGLISH_STOP_WORDS and w not in NOISE_WORDS and len(w) > 1 and not w.isdigit()
    ]


# Words in icon names that say how the icon is drawn or placed, not what it shows (icon sets add their own).
ICON_NOISE = frozenset(
    {
        "outline",
        "alt",
        "plus",
        "minus",
        "check",
        "off",
        "left",
        "right",
        "top",
        "bottom",
        "horizontal",
        "vertical",
        "emoji",
        "icon",
        "icons",
        "symbolic",
    }
)


def icon_words(text: str, noise: frozenset[str] = ICON_NOISE) -> list[str]:
    """The content words of an icon's name, alias or tag (hyphens split): not in `noise`, at least
    three letters, and no codes (`mp3`, `4x4`, `a11y`: any word with a digit)."""
    return [
        w
        for w in content_words(text.replace("-", " "))
        if w not in noise and len(w) > 2 and not any(c.isdigit() for c in w)
    ]


def hashtag(text: str) -> str | None:
    """One Instagram-style tag (word characters and `_`, accents folded), or None when nothing meaningful is left."""
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
