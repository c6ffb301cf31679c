"""A linear head fitted in closed form: ridge regression from backbone features to the targets.

Leave-one-source-out trains one head per held-out source, and on two shared cores a gradient-trained
MLP costs minutes per fold; the ridge solution costs one (F+1)² solve. Hand-written with numpy's
solver rather than scikit-learn's `Ridge`, which is no dependency here and would add nothing but the
same `solve` (the standardisation is folded into the layer so that the bundle stores one Linear).
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
from jointspace.encoders.head import HeadConfig, ProjectionHead


def fit_ridge(
    features: np.ndarray, targets: np.ndarray, lam: float, sample_weight: np.ndarray | None = None
) -> ProjectionHead:
    """A linear `ProjectionHead` (hidden 0) minimising Σ wᵢ‖(xᵢ − μ)/σ · W + b − yᵢ‖² + λ·N/1000·‖W‖².

    Features are standardised (μ, σ over the training rows) so that one λ suits any backbone; λ is
    scaled by N/1000 so that it means the same for 2,000 and 20,000 training pictures. The bias is
    not penalised."""
    x = np.asarray(features, np.float64)
    y = np.asarray(targets, np.float64)
    n, f = x.shape
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
    w = w * (n / w.sum())
    mu = (w[:, None] * x).sum(0) / n
    sigma = np.sqrt((w[:, None] * (x - mu) ** 2).sum(0) / n) + 1e-3
    a = np.hstack([(x - mu) / sigma, np.ones((n, 1))])
    aw = a * w[:, None]
    gram = a.T @ aw
    penalty = np.full(f + 1, lam * n / 1000.0)
    penalty[-1] = 0.0
    gram[np.diag_indices_from(gram)] += penalty
    coef = np.linalg.solve(gram, aw.T @ y)  # (F+1, D)
    weight = coef[:-1] / sigma[:, None]  # back to raw features: x·W' + b'
    bias = coef[-1] - mu @ weight
    head = ProjectionHead(HeadConfig(in_dim=f, out_dim=y.shape[1], hidden=0, dropout=0.0))
    layer = cast(torch.nn.Linear, head.net[-1])  # hidden=0: the head is one linear layer
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight.T.astype(np.float32)))
        layer.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
    return head.eval()
