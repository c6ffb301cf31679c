"""Which queries an evaluation asks, and which gallery images count as relevant to each.

An image is relevant to a word when the word is among its label words (keywords, title and
category words, see `targets.label_words`). A compound query `a+b` needs both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from jointspace.encoders.targets import Labelled, label_words

# The seed method's 24 queries; `ice-cream` is one term (the words "ice" and "cream").
SEED_QUERIES: tuple[str, ...] = (
    "car",
    "skyline",
    "bike",
    "sunrise",
    "snow",
    "rain",
    "ice-cream",
    "cake",
    "pizza",
    "woman",
    "man",
    "kid",
    "yellow+car",
    "skyline+night",
    "bike+park",
    "sunrise+beach",
    "snow+ski",
    "rain+umbrella",
    "ice-cream+beach",
    "chocolate+cake",
    "pizza+wine",
    "woman+bag",
    "man+boat",
    "kid+dog",
)


@dataclass(frozen=True)
class Query:
    """`terms`: each term is a tuple of words (one word, or the words of `ice-cream`)."""

    text: str
    terms: tuple[tuple[str, ...], ...]
    kind: str  # "keyword" | "compound" | "seed"


def parse_query(text: str, kind: str) -> Query:
    return Query(text, tuple(tuple(t.split("-")) for t in text.split("+")), kind)


def relevant_mask(query: Query, labels: Sequence[frozenset[str]]) -> list[bool]:
    return [all(all(w in lab for w in term) for term in query.terms) for lab in labels]


def gallery_labels(items: Sequence[Labelled]) -> list[frozenset[str]]:
    return [frozenset(label_words(it)) for it in items]


def keyword_queries(labels: Sequence[frozenset[str]], min_images: int = 5) -> list[Query]:
    counts = Counter(w for lab in labels for w in lab)
    return [parse_query(w, "keyword") for w, c in sorted(counts.items()) if c >= min_images]


def rare_queries(labels: Sequence[frozenset[str]], most: int = 4) -> list[Query]:
    """Words that label 1 to `most` pictures of the gallery (the "find the picture of a cow" case),
    scored by recall@10 and reciprocal rank, since P@10 cannot exceed their few pictures."""
    counts = Counter(w for lab in labels for w in lab)
    return [parse_query(w, "rare") for w, c in sorted(counts.items()) if 1 <= c <= most]


def compound_queries(
    labels: Sequence[frozenset[str]], min_images: int = 5, min_together: int = 3, limit: int = 60
) -> list[Query]:
    """Pairs of frequent words that occur together in at least `min_together` images, but not almost
    always together (then the pair says no more than one word), most frequent pairs first."""
    counts = Counter(w for lab in labels for w in lab)
    frequent = {w for w, c in counts.items() if c >= min_images}
    pairs: Counter[tuple[str, str]] = Counter()
    for lab in labels:
        pairs.update(combinations(sorted(lab & frequent), 2))
    chosen = [(p, c) for p, c in pairs.items() if c >= min_together and c < 0.8 * min(counts[p[0]], counts[p[1]])]
    chosen.sort(key=lambda pc: (-pc[1], pc[0]))
    return [parse_query(f"{a}+{b}", "compound") for (a, b), _ in chosen[:limit]]


def seed_queries(labels: Sequence[frozenset[str]]) -> list[Query]:
    """The seed method's queries that have at least one relevant image in the gallery."""
    out = [parse_query(q, "seed") for q in SEED_QUERIES]
    return [q for q in out if any(relevant_mask(q, labels))]
