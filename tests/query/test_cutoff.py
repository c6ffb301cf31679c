"""`min_score=auto`: the per-query threshold read from the query's own scores (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest
from jointspace.query.cutoff import AUTO, AUTO_POOL, auto_min_score, no_cutoff_note, parse_min_score


def test_hits_that_stand_out_are_kept_and_the_bulk_is_not() -> None:
    rng = np.random.default_rng(0)
    chance = 0.25 + 0.02 * rng.standard_normal(AUTO_POOL - 5)
    scores = np.concatenate([[0.62, 0.6, 0.58, 0.57, 0.55], chance])
    t = auto_min_score(scores)
    assert (scores >= t).sum() == 5
    # The same query pool without its relevant hits: a few chance hits at most survive.
    assert (chance >= auto_min_score(chance)).sum() <= 2


def test_the_threshold_follows_the_query_not_a_fixed_number() -> None:
    """Two queries whose chance scores sit at different heights keep their own standouts."""
    rng = np.random.default_rng(1)
    low = np.concatenate([[0.45, 0.44], 0.15 + 0.02 * rng.standard_normal(98)])
    high = np.concatenate([[0.75, 0.74], 0.5 + 0.02 * rng.standard_normal(98)])
    assert (low >= auto_min_score(low)).sum() == 2 and (high >= auto_min_score(high)).sum() == 2
    assert auto_min_score(low) < 0.45 < auto_min_score(high)


def test_too_few_or_flat_scores_keep_everything_and_nan_is_ignored() -> None:
    assert auto_min_score([0.9, 0.1, 0.5]) == float("-inf")
    assert auto_min_score(np.full(50, 0.3)) == float("-inf")
    scores = np.concatenate([[np.nan, np.inf], np.linspace(0.1, 0.3, 40)])
    assert np.isfinite(auto_min_score(scores))
    assert auto_min_score(np.linspace(0.1, 0.3, 40), z=1.0) < auto_min_score(np.linspace(0.1, 0.3, 40), z=3.0)
    # ...and the explanation says which of the two it was.
    assert no_cutoff_note([0.9, 0.1, 0.5]).startswith("no cut-off: only 3 candidates, too few")
    assert no_cutoff_note(np.full(50, 0.3)) == "no cut-off: the candidates score alike, so none stands out"


def test_min_score_accepts_a_number_or_auto() -> None:
    assert parse_min_score(None) is None
    assert parse_min_score(" Auto ") == AUTO and parse_min_score("auto") == AUTO
    assert parse_min_score("0.3") == 0.3 and parse_min_score(0.25) == 0.25 and parse_min_score(-1) == -1.0
    for bad in ("automatic", "", "nan", float("inf")):
        with pytest.raises(ValueError, match="min_score"):
            parse_min_score(bad)
