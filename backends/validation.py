"""Checks both backends apply before writing or searching, so that they refuse the same input the same way."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jointspace.errors import DimensionError, ModelMismatchError, QueryError
from jointspace.records import Document

# Elasticsearch's dot_product similarity refuses a float vector whose squared length differs from 1
# by more than this; the embedded backend uses the same bound so both accept the same documents.
UNIT_LENGTH_TOLERANCE = 1e-4


def check_dimension(vector: np.ndarray, dim: int, what: str) -> np.ndarray:
    """The vector as 1-D float32; DimensionError naming both sizes when it is not (dim,)."""
    array = np.asarray(vector, dtype=np.float32)
    if array.ndim != 1 or array.shape[0] != dim:
        raise DimensionError(
            f"{what} has {array.size} dimensions {tuple(array.shape)}, but this index holds {dim}-dimensional vectors"
        )
    return array


def query_vector(vector: np.ndarray, dim: int) -> np.ndarray:
    """The query as a unit float32 vector, so both backends score by cosine = dot product."""
    array = check_dimension(vector, dim, "the query vector")
    norm = float(np.linalg.norm(array))
    if not np.isfinite(norm) or norm == 0.0:
        raise QueryError("the query vector is zero or not finite: there is nothing to search for")
    return array / norm


def split_valid(docs: Sequence[Document], dim: int, model: str) -> tuple[list[Document], dict[str, str]]:
    """The documents fit to write (last one wins per id), and id → reason for those refused.

    A wrong size or another model bundle is a programming error upstream and raises before anything
    is written; a bad vector value is one bad item and is reported without stopping the batch.
    """
    for doc in docs:
        check_dimension(doc.vector, dim, f"the vector of post {doc.id!r}")
        if doc.model != model:
            raise ModelMismatchError(
                f"post {doc.id!r} was embedded by model bundle {doc.model!r}, "
                f"but this index holds vectors of {model!r}; re-embed it with "
                f"{model!r} or write it to an index built for {doc.model!r}"
            )
    latest: dict[str, Document] = {}
    errors: dict[str, str] = {}
    for doc in docs:
        vector = np.asarray(doc.vector, dtype=np.float32)
        if not np.all(np.isfinite(vector)):
            errors[doc.id] = "vector has non-finite values (NaN or infinity)"
            latest.pop(doc.id, None)
            continue
        squared = float(np.dot(vector, vector))
        if abs(squared - 1.0) > UNIT_LENGTH_TOLERANCE:
            errors[doc.id] = f"vector is not unit length (squared length {squared:.6f}); L2-normalise it"
            latest.pop(doc.id, None)
            continue
        errors.pop(doc.id, None)
        latest[doc.id] = doc
    return list(latest.values()), errors
