"""Vector algebra of a parsed expression: weights distributed over terms, then a weighted sum.

query vector = normalise( Σ weightᵢ · unit(termᵢ) ); similarity is then a dot product of unit vectors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from jointspace.errors import QueryError

from .syntax import Node, Scaled, Term

# Below this fraction of the total absolute weight the terms are taken to cancel out: the
# direction of a near-zero sum is numerical noise, not a meaning.
CANCEL_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class WeightedTerm:
    """A distinct term and its total weight (repeats and enclosing weights already applied)."""

    term: Term
    weight: float


def weighted_terms(node: Node | None) -> list[WeightedTerm]:
    """Distinct terms in order of first appearance, with weights summed: `park+2*park-park` → park:2."""
    totals: dict[tuple[str, str], float] = {}
    first: dict[tuple[str, str], Term] = {}

    def walk(current: Node, factor: float) -> None:
        if isinstance(current, Term):
            first.setdefault(current.key, current)
            totals[current.key] = totals.get(current.key, 0.0) + factor
        elif isinstance(current, Scaled):
            walk(current.node, factor * current.weight)
        else:
            for sign, part in current.parts:
                walk(part, factor * sign)

    if node is not None:
        walk(node, 1.0)
    return [WeightedTerm(first[key], weight) for key, weight in totals.items()]


def unit(vector: np.ndarray) -> np.ndarray:
    """`vector` scaled to length 1 (float32); a zero vector stays zero."""
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def combine(
    terms: list[WeightedTerm], vectors: Mapping[tuple[str, str], np.ndarray], expression: str | None = None
) -> np.ndarray:
    """The unit query vector. Raises QueryError when the weighted terms cancel out."""
    if not terms:
        # Filters alone (`city:tokyo`) narrow a search but give it no direction: say what to add,
        # with the query's own filters in the example.
        example = " ".join(["beach", *(expression or "").split()])
        raise QueryError(
            f"the query has no terms to search with: add a word or an image, e.g. {example}", 0, expression
        )
    total = np.zeros_like(unit(vectors[terms[0].term.key]), dtype=np.float64)
    scale = 0.0
    for item in terms:
        total += item.weight * unit(vectors[item.term.key]).astype(np.float64)
        scale += abs(item.weight)
    norm = float(np.linalg.norm(total))
    if scale == 0.0 or norm <= CANCEL_TOLERANCE * scale:
        raise QueryError(
            "the terms cancel out (their weighted sum is nearly zero): change a weight or a sign", 0, expression
        )
    return (total / norm).astype(np.float32)


def contributions(
    terms: list[WeightedTerm], vectors: Mapping[tuple[str, str], np.ndarray], query: np.ndarray
) -> list[float]:
    """Each term's share of the query: weight × cos(term, query). The shares sum to |Σ wᵢ·uᵢ|."""
    return [float(item.weight * np.dot(unit(vectors[item.term.key]), query)) for item in terms]
