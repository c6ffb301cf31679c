"""Records → response models, and anything the query layer returns → plain JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

import numpy as np
from jointspace.api.schemas import HitOut, PostOut, WordScore

from jointspace.records import Hit, Post


def post_urls(post_id: str) -> dict[str, str]:
    base = f"/posts/{quote(post_id, safe='')}"
    return {"image_url": f"{base}/image", "thumbnail_url": f"{base}/thumbnail"}


def post_out(post: Post) -> PostOut:
    return PostOut(
        id=post.id,
        caption=post.caption,
        hashtags=list(post.hashtags),
        city=post.city,
        created_at=post.created_at,
        author=post.author,
        source=post.source,
        **post_urls(post.id),
    )


def hit_out(hit: Hit, include_vector: bool) -> HitOut:
    vector = None
    if include_vector and hit.vector is not None:
        vector = [float(x) for x in np.asarray(hit.vector, dtype=np.float32)]
    return HitOut(**post_out(hit.post).model_dump(), score=float(hit.score), vector=vector)


def word_scores(pairs: Any) -> list[WordScore]:
    """Nearest words as given by the query layer: (word, score) pairs or {"word", "score"} dicts."""
    out: list[WordScore] = []
    for item in pairs or ():
        if isinstance(item, Mapping):
            out.append(WordScore(word=str(item["word"]), score=float(item["score"])))
        else:
            word, score = item
            out.append(WordScore(word=str(word), score=float(score)))
    return out


def jsonable(value: Any) -> Any:
    """Dataclasses, numpy scalars/arrays, tuples and datetimes → JSON types (for `explain`)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "to_json"):
            return jsonable(value.to_json())
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "to_json") and callable(value.to_json):
        return jsonable(value.to_json())
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, datetime):
        return value.isoformat()
    return value
