"""Conversions between `Document` and the posts index's JSON (see es_mappings/posts.template.json)."""

from __future__ import annotations

from typing import Any

import numpy as np
from jointspace.es_mappings.template import VECTOR_FIELD

from jointspace.records import Document, Post


def to_source(doc: Document) -> dict[str, Any]:
    """The indexed JSON: post fields, the model and the vector (kept out of `_source` by the mapping).
    The post's fields are `Post.to_json`'s, but its `image` is stored as `image_ref` after `model`
    (the order the index has always been written in)."""
    fields = doc.post.to_json()
    image = fields.pop("image")
    vector = np.asarray(doc.vector, dtype="<f4")
    return {
        **fields,
        "model": doc.model,
        "image_ref": image,
        VECTOR_FIELD: vector,  # numpy: the client's orjson serialiser writes it directly
    }


def bulk_action(doc: Document, index: str) -> dict[str, Any]:
    """An `index` action (create or replace) keyed by post id, so repeating it changes nothing."""
    return {"_op_type": "index", "_index": index, "_id": doc.id, "_source": to_source(doc)}


def post_from_source(source: dict[str, Any]) -> Post:
    return Post.from_json({**source, "image": source.get("image_ref") or ""})


def vector_from_fields(fields: dict[str, Any] | None) -> np.ndarray:
    """The float32 vector from `docvalue_fields` (exact: ES prints float32 values); empty when not requested."""
    values = (fields or {}).get(VECTOR_FIELD)
    if not values:
        return np.empty(0, dtype=np.float32)
    return np.asarray(values[0], dtype=np.float32)


def document_from_hit(hit: dict[str, Any], model: str) -> Document:
    """A Document from a search hit with `_source` (and `fields.vector` when docvalue_fields asked for it)."""
    return Document(
        post=post_from_source(hit["_source"]),
        vector=vector_from_fields(hit.get("fields")),
        model=hit["_source"].get("model") or model,
    )
