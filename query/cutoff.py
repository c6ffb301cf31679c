"""`min_score=auto`: a per-query score threshold read from the query's own score distribution.

A fixed similarity threshold means different things for different queries: a common word scores
every picture a little higher than a rare one does. So the threshold is set per query from the
scores of its top `AUTO_POOL` candidates (the head of its ranking): the bulk of that pool is what
"similar by chance" looks like for this query, and a hit is kept only when it stands out of it by
`z` robust standard deviations (median and 1.4826 × median absolute deviation, so that the few
relevant hits at the top do not inflate the spread they are judged by). A query whose top scores
do not stand out of the rest (nothing relevant) keeps little or nothing; a good one keeps the
hits above the drop. `z` was chosen on leave-one-source-out galleries (docs/eval-report.md).

Hand-written rather than taken from a library: it is four lines of numpy, and scipy's robust
scale helpers would add nothing but a dependency.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

AUTO = "auto"
AUTO_POOL = 500  # candidates whose scores make the distribution (a kNN's candidate list; the same for every page)
AUTO_Z = 4.0  # robust standard deviations above the pool's median (the best z on LOSO galleries)
MIN_POOL = 10  # fewer scores than this say nothing about a distribution: keep everything
TIE = 1e-9  # spreads below this are rounding: the scores tie


def auto_min_score(scores: Sequence[float] | np.ndarray, z: float = AUTO_Z) -> float:
    """The threshold for one query from the scores of its top candidates (any order).

    Returns -inf (keep everything) when the pool is too small or flat to tell hits from chance."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    s = s[np.isfinite(s)]
    if s.size < MIN_POOL:
        return float("-inf")
    centre = float(np.median(s))
    spread = 1.4826 * float(np.median(np.abs(s - centre)))
    if spread <= TIE:  # most of the pool ties (an index of few distinct pictures): the plain deviation
        spread = float(s.std())
    if spread <= TIE:  # every score the same: nothing stands out, nothing to cut
        return float("-inf")
    return centre + z * spread


def no_cutoff_note(scores: Sequence[float] | np.ndarray) -> str:
    """Why `auto_min_score` kept everything for these scores, in words for the explanation."""
    finite = int(np.isfinite(np.asarray(scores, dtype=np.float64)).sum())
    if finite < MIN_POOL:
        return (
            f"no cut-off: only {finite} candidate{'s' if finite != 1 else ''}, too few to tell hits "
            f"from chance (auto needs {MIN_POOL})"
        )
    return "no cut-off: the candidates score alike, so none stands out"


def parse_min_score(value: float | str | None) -> float | str | None:
    """A request's `min_score`: None, a finite number, or "auto" (any case); anything else is a ValueError."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text == AUTO:
            return AUTO
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"min_score must be a number or 'auto', not {value!r}") from None
    else:
        number = float(value)
    if not np.isfinite(number):
        raise ValueError("min_score must be a finite number or 'auto'")
    if not -1.0 <= number <= 1.0:  # a dot product of unit vectors: beyond, nothing or everything passes
        raise ValueError(f"min_score must be a similarity between -1 and 1, or 'auto', not {number:g}")
    return number
