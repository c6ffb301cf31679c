"""A text encoder and a post collection whose geometry is set by hand, so that query algebra
and rankings can be checked with pencil and paper.

Each vocabulary word is its own axis (word i ↦ e_i), so `2*beach-0.5*sunset` is exactly
(2·e_beach - 0.5·e_sunset) / |…| and a post's score is a dot product anyone can compute.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from jointspace.records import Document, Post

WORDS = (
    "america",
    "people",
    "park",
    "bike",
    "car",
    "yellow",
    "cold",
    "snow",
    "travel",
    "paint",
    "dog",
    "beach",
    "sunset",
    "sun",
    "sunrise",
    "river",
    "mountain",
    "city",
    "food",
    "night",
    "street",
    "art",
    "boat",
    "train",
)
SPARE = 48
DIM = len(WORDS) + SPARE  # spare axes s0…s47 are never words: they set posts apart from each other
MODEL = "geometry"


def axis(word_or_index: str | int) -> np.ndarray:
    index = WORDS.index(word_or_index) if isinstance(word_or_index, str) else word_or_index
    vector = np.zeros(DIM, dtype=np.float32)
    vector[index] = 1.0
    return vector


def mix(**weights: float) -> np.ndarray:
    """unit(Σ weight · e_word); the keys `s0`…`s47` name the non-word axes."""
    vector = np.zeros(DIM, dtype=np.float32)
    for name, weight in weights.items():
        vector += weight * (axis(len(WORDS) + int(name[1:])) if re.fullmatch(r"s\d+", name) else axis(name))
    return vector / np.linalg.norm(vector)


class GeometryEncoder:
    """`TextEncoder` with one axis per word; captions are the normalised sum of their known words."""

    name = MODEL
    dim = DIM
    embeds_unseen_words = False

    def has_word(self, word: str) -> bool:
        return word in WORDS

    def vocabulary(self) -> Sequence[str]:
        return WORDS

    def embed_words(self, words: Sequence[str]) -> np.ndarray:
        for word in words:
            if word not in WORDS:
                raise KeyError(word)
        return np.stack([axis(w) for w in words]) if words else np.zeros((0, DIM), np.float32)

    def embed_caption(self, caption: str, hashtags: Sequence[str] = ()) -> np.ndarray:
        known = [w for w in re.findall(r"\w+", caption.lower()) + [h.lower() for h in hashtags] if w in WORDS]
        if not known:
            return axis(len(WORDS))
        total = np.sum([axis(w) for w in known], axis=0)
        return (total / np.linalg.norm(total)).astype(np.float32)

    def nearest_words(self, vector: np.ndarray, k: int = 10) -> list[tuple[str, float]]:
        scores = np.asarray(vector, dtype=np.float32)[: len(WORDS)]
        order = np.argsort(-scores, kind="stable")[:k]
        return [(WORDS[i], float(scores[i])) for i in order]


LADDER = 30


def ladder_similarity(i: int) -> float:
    return 0.90 - 0.0135 * i


def ladder(i: int) -> np.ndarray:
    """A unit vector whose dot product with e_food is ladder_similarity(i), on its own spare axis."""
    cos = ladder_similarity(i)
    return (cos * axis("food") + np.sqrt(1 - cos * cos) * axis(len(WORDS) + 15 + i)).astype(np.float32)


def post(
    post_id: str, caption: str, city: str = "london", tags: Sequence[str] = (), created: str = "2018-06-01"
) -> Post:
    return Post(
        id=post_id,
        image=f"/media/{post_id}.png",
        caption=caption,
        hashtags=tuple(tags),
        city=city,
        created_at=datetime.fromisoformat(created),
        author="tester",
        source="fixture",
    )


def documents() -> list[Document]:
    """The shared collection: posts "1", "3" and "10" of the example queries, a rare city, a pair of
    near-duplicates and a ladder of posts with strictly decreasing similarity for paging."""
    rows: list[tuple[Post, np.ndarray]] = [
        (post("1", "people in the park", tags=("park",)), mix(people=1, park=1)),
        (post("3", "a dog in the park", tags=("dog",)), mix(dog=1, park=1)),
        (post("10", "beach at sunset", city="sydney", tags=("beach",)), mix(beach=1, sunset=1)),
        (post("20", "yellow car on the street", tags=("car",)), mix(car=1, yellow=1, street=0.5)),
        (post("21", "bike in the park", created="2019-03-01"), mix(bike=1, park=0.3)),
        (post("22", "bike on the mountain", city="sydney"), mix(bike=1, mountain=0.5)),
        (post("23", "cold snow night", city="oslo", tags=("snow",)), mix(cold=1, snow=1, night=0.2)),
        (post("24", "travel paint art", city="paris"), mix(travel=1, paint=1, art=0.5)),
        (post("25", "america road trip", city="new york"), mix(america=1, travel=0.5, car=0.2)),
        (post("26", "sunrise over the beach", city="sydney", created="2017-01-05"), mix(beach=1, sunrise=1)),
        # Near-duplicates: the same picture posted twice (dot product 0.99999, what two posts of
        # one file give; a re-encoded copy falls to ~0.995 with the shipped bundle).
        (post("30", "boat on the river", tags=("boat",)), mix(boat=1, river=1)),
        (post("31", "boat on the river again", tags=("boat",)), mix(boat=1, river=0.99)),
        # Rare city: three posts in oslo about trains, and twelve london trains all scoring higher.
        *[(post(f"o{i}", "train in the snow", city="oslo"), mix(train=1, **{f"s{i}": 1.5})) for i in range(3)],
        *[(post(f"t{i:02d}", "train at the station"), mix(train=1, **{f"s{3 + i}": 0.5})) for i in range(12)],
        # A ladder for paging: similarity to `food` falls strictly with i (0.90 … 0.51), and no two
        # are near-duplicates (pairwise dot ≤ 0.81).
        *[(post(f"f{i:02d}", "street food", city="tokyo"), ladder(i)) for i in range(LADDER)],
    ]
    return [Document(post=p, vector=v.astype(np.float32), model=MODEL) for p, v in rows]


# The README's example queries, over this geometry's words and posts (the parser and search tests).
EXAMPLES = [
    "america",
    "people+park",
    "bike-park",
    "car-yellow",
    "cold-snow",
    "travel+paint",
    "[IMG_1]+park",
    "[IMG_3]-dog",
    "[IMG_1]+[IMG_10]",
    "[IMG_1]+park+park+park",
    "2*beach-0.5*sunset city:london",
]
