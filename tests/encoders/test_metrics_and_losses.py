import numpy as np
import pytest
import torch
from jointspace.encoders.evaluation.core import paired_bootstrap, paired_by_source, rank_metrics, stratified_bootstrap
from jointspace.encoders.evaluation.metrics import category_base_rate, image_to_image_p10
from jointspace.encoders.evaluation.queries import compound_queries, keyword_queries, parse_query, relevant_mask
from jointspace.encoders.losses import compute_loss, soft_contrastive_loss


def test_rank_metrics_known_values() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    relevant = np.array([True, False, True, False, False])
    vec = rank_metrics(np.eye(5, dtype=np.float32) * scores[:, None], np.ones((1, 5), np.float32), relevant[None])
    assert vec["p5"][0] == vec["p10"][0] == 0.4  # a gallery of five: both cut-offs see it all
    assert vec["ap"][0] == pytest.approx((1 / 1 + 2 / 3) / 2)


def test_image_to_image_and_base_rate() -> None:
    v = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32)
    p10, base, n = image_to_image_p10(v, ["a", "a", "b", "b"])
    assert n == 4 and base == category_base_rate(["a", "a", "b", "b"])[0] == 1 / 3
    assert p10 == 1 / 3  # k = 3 neighbours, one of them shares the category


def test_paired_bootstrap_separates_a_steady_gain_from_one_lucky_query() -> None:
    steady = paired_bootstrap([0.5] * 20, [0.3] * 20)
    assert steady == (pytest.approx(0.2), pytest.approx(0.2), pytest.approx(0.2))
    # A gain carried by one query out of twenty: the interval reaches down to 0.
    mean, low, high = paired_bootstrap([1.0] + [0.0] * 19, [0.0] * 20, resamples=4000)
    assert mean == pytest.approx(0.05) and low == 0.0 and high > 0.0
    # Mixed signs around no gain: the interval straddles 0.
    mean, low, high = paired_bootstrap([0.3, 0.1] * 10, [0.1, 0.3] * 10)
    assert mean == pytest.approx(0.0) and low < 0 < high
    assert paired_bootstrap([0.4, 0.2], [0.1, 0.1], seed=3) == paired_bootstrap([0.4, 0.2], [0.1, 0.1], seed=3)
    # Galleries weigh the same whatever their number of queries, as in the report's mean column.
    assert stratified_bootstrap([([0.5] * 20, [0.3] * 20), ([0.3] * 2, [0.3] * 2)]) == (
        pytest.approx(0.1),
        pytest.approx(0.1),
        pytest.approx(0.1),
    )


def test_queries_and_relevance() -> None:
    labels = [frozenset({"red", "car"})] * 5 + [frozenset({"red", "apple"})] * 5 + [frozenset({"ice", "cream"})]
    assert [q.text for q in keyword_queries(labels, 5)] == ["apple", "car", "red"]
    assert compound_queries(labels, 5, 3) == []  # car always comes with red: the pair says nothing more
    assert sum(relevant_mask(parse_query("ice-cream", "seed"), labels)) == 1


def test_soft_targets_do_not_push_apart_near_duplicate_captions() -> None:
    # Images 0 and 1 have (nearly) the same caption and each predicts its own perfectly: plain InfoNCE
    # still pushes them apart (non-zero gradient), soft targets leave them be.
    target = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.001], [0.0, 1.0]]), dim=-1)
    grads = {}
    for name in ("infonce", "soft-contrastive"):
        pred = target.clone().requires_grad_(True)
        compute_loss(name, pred, target).backward()
        grads[name] = float(pred.grad.norm())
    assert grads["soft-contrastive"] < 1e-3 < grads["infonce"]
    assert float(compute_loss("regression", target, target)) < 1e-6
    assert float(soft_contrastive_loss(target, target)) < float(soft_contrastive_loss(target[[2, 0, 1]], target))


def test_paired_by_source_counts_sources_wholly_above_or_below_zero() -> None:
    results = {
        "up": {"p10_per_query": [0.6] * 10},
        "down": {"p10_per_query": [0.1] * 10},
        "none": {"p10_per_query": []},
    }
    reference = {
        "up": {"p10_per_query": [0.2] * 10},
        "down": {"p10_per_query": [0.4] * 10},
        "none": {"p10_per_query": []},
    }
    paired = paired_by_source(results, reference, "p10")
    assert set(paired["per_source"]) == {"up", "down"}  # a source without queries is left out
    assert paired["above"] == 1 and paired["below"] == 1
    assert paired["diff"] == pytest.approx((0.4 - 0.3) / 2)
