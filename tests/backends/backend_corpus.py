"""Fake posts whose geometry is known: random unit vectors (seeded), a few cities, hashtags, sources, dates."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from jointspace.records import Document, Post

MODEL = "test-model"
DIM = 16
BIG_CITIES = ("london", "paris", "berlin", "madrid", "rome")
RARE_CITY = "reykjavik"
START = datetime(2024, 1, 1)


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def doc(
    post_id: str,
    vector: np.ndarray,
    caption: str = "",
    hashtags: tuple[str, ...] = (),
    city: str | None = None,
    created_at: datetime | None = None,
    source: str | None = None,
    model: str = MODEL,
) -> Document:
    post = Post(
        id=post_id,
        image=f"/media/{post_id}.jpg",
        caption=caption,
        hashtags=hashtags,
        city=city,
        created_at=created_at,
        author="someone",
        source=source,
    )
    return Document(post=post, vector=np.asarray(vector, dtype=np.float32), model=model)


def city_corpus(n: int = 2_000, dim: int = DIM, seed: int = 7) -> list[Document]:
    """n posts: 3 in RARE_CITY (ids rare-0..2), the rest spread over BIG_CITIES. One post a day from
    START; hashtag `even`/`odd` by index, `sunset` on every tenth; source `feed-a`/`feed-b` by thirds."""
    vectors = unit_vectors(n, dim, seed)
    docs = []
    for i in range(n):
        rare = i < 3
        docs.append(
            doc(
                post_id=f"rare-{i}" if rare else f"p{i}",
                vector=vectors[i],
                caption=f"post number {i}",
                hashtags=("even" if i % 2 == 0 else "odd",) + (("sunset",) if i % 10 == 0 else ()),
                city=RARE_CITY.title()
                if rare
                else BIG_CITIES[i % len(BIG_CITIES)].upper()
                if i % 7 == 0
                else BIG_CITIES[i % len(BIG_CITIES)],
                created_at=START + timedelta(days=i),
                source="feed-a" if i % 3 else "feed-b",
            )
        )
    return docs
