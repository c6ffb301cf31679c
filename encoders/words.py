"""Caption text → the content words a word model embeds: lower-cased, hashtags split, stop words dropped."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache

# gensim's list (the Glasgow list) also drops words that name things people photograph
# ("fire", "computer", "bottom", ...); those must stay searchable.
_CONTENT_WORDS = {
    "fire",
    "computer",
    "bill",
    "system",
    "top",
    "bottom",
    "front",
    "back",
    "side",
    "full",
    "empty",
    "thick",
    "thin",
    "mill",
    "kg",
    "km",
    "call",
    "cry",
    "interest",
    "part",
    "name",
    "move",
    "show",
    "fill",
    "found",
    "find",
    "give",
    "detail",
    "amount",
    "con",
    "de",
    "well",
    "serious",
    "sincere",
    "describe",
    "made",
    "say",
    "see",
    "eleven",
    "twelve",
    "fifteen",
}


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """gensim's list less the content words, plus words that name the medium. Imported on first use:
    `import gensim` takes seconds (it pulls in scipy), which a word query must not pay."""
    from gensim.parsing.preprocessing import STOPWORDS

    return frozenset(STOPWORDS - _CONTENT_WORDS) | {"photo", "image", "picture", "clipart", "svg"}


def __getattr__(name: str) -> frozenset[str]:  # `STOP_WORDS` stays importable, built lazily (PEP 562)
    if name == "STOP_WORDS":
        return stop_words()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_WORD = re.compile(r"[a-z][a-z'\-]*[a-z]|[a-z]")
_HASHTAG = re.compile(r"#(\w+)")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def split_camel(tag: str) -> list[str]:
    """`sunsetBeach` → [sunset, beach]; `NYCSkyline` → [nyc, skyline]."""
    return [p.lower() for p in _CAMEL.findall(tag)]


class WordSegmenter:
    """Splits an all-lower-case hashtag into known words (`sunsetbeach` → sunset beach).

    Hand-written because the library that does this (wordsegment) ships its own unigram file;
    here the encoder's vocabulary ranks serve as frequencies (Zipf: cost ≈ log rank), which is
    the classic dynamic programme in a dozen lines and costs nothing to load.
    """

    def __init__(self, rank: Callable[[str], int | None], max_word_len: int = 20) -> None:
        self._rank = rank
        self._max = max_word_len
        # A cache per segmenter (not `lru_cache` on the method, whose one class-wide cache would
        # keep every segmenter, and its vocabulary, alive).
        self.segment: Callable[[str], tuple[str, ...]] = lru_cache(maxsize=20_000)(self._segment)

    def _cost(self, word: str) -> float:
        r = self._rank(word)
        if r is None:
            return 10.0 + 3.0 * len(word)  # unknown pieces are expensive, longer ones more so
        return math.log(r + 2.0) + (4.0 if len(word) == 1 else 0.0)

    def _segment(self, text: str) -> tuple[str, ...]:
        n = len(text)
        best: list[tuple[float, int]] = [(0.0, 0)] + [(math.inf, 0)] * n
        for end in range(1, n + 1):
            for start in range(max(0, end - self._max), end):
                cost = best[start][0] + self._cost(text[start:end])
                if cost < best[end][0]:
                    best[end] = (cost, start)
        words: list[str] = []
        end = n
        while end > 0:
            start = best[end][1]
            words.append(text[start:end])
            end = start
        # Keep the tag whole when splitting does not beat it (a known word such as "sunflower").
        whole = self._cost(text)
        return (text,) if whole <= best[n][0] else tuple(reversed(words))


def hashtag_words(tag: str, segmenter: WordSegmenter | None = None) -> list[str]:
    """Words inside one hashtag (with or without '#'), by camelCase then by known-word segmentation."""
    tag = tag.lstrip("#")
    out: list[str] = []
    for part in split_camel(tag) or [tag.lower()]:
        if not part.isalpha():
            continue
        out.extend(segmenter.segment(part) if segmenter and len(part) > 5 else [part])
    return out


def caption_words(
    caption: str, hashtags: Iterable[str] = (), segmenter: WordSegmenter | None = None, keep_stop_words: bool = False
) -> list[str]:
    """Content words of a caption plus its hashtags, in order, repeats kept (they count for tf)."""
    tags = list(hashtags) + [m for m in _HASHTAG.findall(caption) if m not in hashtags]
    body = _HASHTAG.sub(" ", caption).lower().replace("_", " ")
    words = [w.strip("'-") for w in _WORD.findall(body)]
    for tag in tags:
        words.extend(hashtag_words(tag, segmenter))
    return [w for w in words if w and (keep_stop_words or w not in stop_words())]


def caption_text(caption: str, hashtags: Sequence[str] = (), segmenter: WordSegmenter | None = None) -> str:
    """A caption as plain words for a sentence model: the text without '#', hashtags spelt out."""
    body = _HASHTAG.sub(lambda m: " ".join(hashtag_words(m.group(1), segmenter)), caption)
    extra = [" ".join(hashtag_words(t, segmenter)) for t in hashtags if f"#{t.lstrip('#')}" not in caption]
    return " ".join([body.replace("_", " ").strip(), *extra]).strip()
