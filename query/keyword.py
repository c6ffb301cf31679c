"""The keyword side of a query: which words and phrases to match, and which to exclude.

`SearchBackend.keyword(text, k, filters)` takes plain text and matches it against captions and
hashtags, so exclusion (`bike-park`: posts about bikes that do not mention parks) is applied
here: hits mentioning an excluded word are dropped and the list is refilled from deeper
results, which works the same on every backend.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from jointspace.records import Hit

from .algebra import WeightedTerm
from .syntax import quote

_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class KeywordQuery:
    words: tuple[str, ...]  # positive words, in order
    phrases: tuple[str, ...]  # positive quoted phrases
    excluded: tuple[str, ...]  # words of negative-weight terms (phrases split into words)

    @property
    def text(self) -> str:
        """What the backend's keyword search receives: the words, then the phrases in quotes."""
        return " ".join([*self.words, *(quote(p) for p in self.phrases)])

    def is_empty(self) -> bool:
        return not (self.words or self.phrases)

    def to_json(self) -> dict[str, object]:
        return {
            "text": self.text,
            "words": list(self.words),
            "phrases": list(self.phrases),
            "excluded": list(self.excluded),
        }


def keyword_query(terms: Sequence[WeightedTerm]) -> KeywordQuery:
    """Words and phrases with a positive net weight match; negative ones exclude; images are
    not text and take no part."""
    words: list[str] = []
    phrases: list[str] = []
    excluded: list[str] = []
    for item in terms:
        if item.term.kind not in ("word", "phrase") or item.weight == 0:
            continue
        if item.weight > 0:
            (words if item.term.kind == "word" else phrases).append(item.term.text)
        else:
            excluded.extend(t.lower() for t in _TOKEN.findall(item.term.text))
    return KeywordQuery(tuple(words), tuple(phrases), tuple(dict.fromkeys(excluded)))


def mentions_any(hit: Hit, words: Sequence[str]) -> bool:
    """Whether the post's caption or hashtags contain one of `words` (case-insensitive, whole words)."""
    if not words:
        return False
    tokens = {t.lower() for t in _TOKEN.findall(hit.post.caption)}
    tokens.update(h.lower().lstrip("#") for h in hit.post.hashtags)
    return any(w in tokens for w in words)
