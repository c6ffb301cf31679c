"""Query expansion (pseudo-relevance feedback) as the leave-one-source-out bench measures it."""

from __future__ import annotations

import numpy as np
import pytest
from jointspace.encoders.evaluation.expansion import (
    Expansion,
    augment_gallery,
    expand,
    expanded_scores,
    feedback_scores,
)
from jointspace.encoders.evaluation.loso import QuerySet, keyword_p10
from jointspace.encoders.evaluation.queries import parse_query


def unit(rows: list[list[float]]) -> np.ndarray:
    a = np.asarray(rows, np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


# The query points along axis 0. Pictures 0 and 1 show the thing, say so (axis 0) and look alike
# (axis 1); picture 2 shows it too and looks like them but hardly says so; pictures 3 and 4 say the
# word a little more than picture 2 and look like nothing else (axes 2 and 3).
GALLERY = unit([[0.7, 0.7, 0, 0], [0.65, 0.75, 0, 0], [0.2, 0.98, 0, 0], [0.5, 0, 0.85, 0], [0.45, 0, 0, 0.9]])
QUERY = np.array([[1.0, 0.0, 0.0, 0.0]], np.float32)


def test_top_zero_is_exactly_the_plain_ranking() -> None:
    rng = np.random.default_rng(0)
    gallery = unit(rng.normal(size=(50, 8)).tolist())
    queries = unit(rng.normal(size=(5, 8)).tolist())
    assert np.array_equal(expanded_scores(queries, gallery, Expansion(0, 2.0)), queries @ gallery.T)
    assert np.array_equal(expanded_scores(queries, gallery, Expansion(5, 0.0)), queries @ gallery.T)
    assert np.array_equal(augment_gallery(gallery, gallery, 0, 1.0), gallery)


def test_expansion_brings_up_a_picture_the_first_round_missed() -> None:
    plain = (QUERY @ GALLERY.T)[0]
    assert list(np.argsort(-plain)) == [0, 1, 3, 4, 2]  # picture 2 is last with the text vector alone
    moved = expanded_scores(QUERY, GALLERY, Expansion(2, 1.0))[0]
    assert list(np.argsort(-moved)) == [0, 1, 2, 3, 4]  # the top two's look brings it above 3 and 4


def test_batch_scores_match_one_expanded_query_and_alpha_leans_on_the_best_hit() -> None:
    scores = (QUERY @ GALLERY.T)[0]
    top = np.argsort(-scores)[:2]
    for alpha in (0.0, 3.0):
        q = expand(QUERY[0], GALLERY[top], scores[top], 1.0, alpha)
        assert np.linalg.norm(q) == pytest.approx(1.0)
        batch = expanded_scores(QUERY, GALLERY, Expansion(2, 1.0, alpha))[0]
        assert np.allclose(batch, q @ GALLERY.T, atol=1e-6)
    # No hits, or only hits with no positive score under alpha-QE: the query unchanged.
    assert np.array_equal(expand(QUERY[0], GALLERY[:0], scores[:0], 1.0), QUERY[0])
    assert np.array_equal(expand(QUERY[0], GALLERY[2:3], np.zeros(1), 1.0, 3.0), QUERY[0])


def test_feedback_on_the_gallery_itself_ranks_as_the_expanded_query() -> None:
    rng = np.random.default_rng(1)
    gallery = unit(rng.normal(size=(40, 6)).tolist())
    queries = unit(rng.normal(size=(4, 6)).tolist())
    e = Expansion(5, 0.7, 3.0)
    a = np.argsort(-expanded_scores(queries, gallery, e), axis=1, kind="stable")
    b = np.argsort(-feedback_scores(queries, gallery, e, gallery), axis=1, kind="stable")
    assert np.array_equal(a[:, :20], b[:, :20])


def test_the_loso_metrics_score_the_expanded_ranking() -> None:
    # The gallery again behind 10 filler pictures that score 0.3 (above picture 2's 0.2 without
    # expansion, below its 0.57 with it): pictures 0, 1, 2 are relevant.
    filler = np.zeros((10, 5), np.float32)
    filler[:, 0], filler[:, 4] = 0.3, np.sqrt(1 - 0.09)
    vectors = np.vstack([np.pad(GALLERY, ((0, 0), (0, 1))), filler])
    relevant = np.zeros((1, 15), bool)
    relevant[0, :3] = True
    qs = QuerySet([parse_query("a", "keyword")], np.pad(QUERY, ((0, 0), (0, 1))), np.array([True]), relevant)
    assert keyword_p10(vectors, qs)[0] == pytest.approx(0.2)
    assert keyword_p10(vectors, qs, Expansion(2, 1.0))[0] == pytest.approx(0.3)
    assert keyword_p10(vectors, qs, Expansion())[0] == pytest.approx(0.2)


def test_gallery_augmentation_moves_each_picture_towards_its_nearest() -> None:
    out = augment_gallery(GALLERY, GALLERY, 1, 1.0)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0)
    # Picture 2 takes on its nearest's (picture 1's) axis-0 share: the query reaches it better.
    assert (QUERY @ out.T)[0, 2] > 0.4 > 0.2 > (QUERY @ GALLERY.T)[0, 2]
