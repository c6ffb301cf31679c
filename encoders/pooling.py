"""How a backbone's final feature map becomes one vector a picture.

`avg` is the network's own head (global average pooling). `gem<p>` is generalised-mean pooling
(Radenović, Tolias and Chum, 2018): (mean of xᵖ)^(1/p) over the map's cells, which weighs the
strongest cells more as p grows (p 1 is the average, large p the maximum). On a drawing on a plain
background most of the 7×7 cells are paper, and the average dilutes the drawn thing with it: GeM
at p 4 lifted the leave-one-source-out P@10 of the default from 0.343 to 0.364 (+0.021, interval
+0.011 to +0.032; docs/eval-report.md). Torch has no GeM layer, hence these few lines.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from jointspace.errors import ConfigurationError

_GEM = re.compile(r"gem(\d+(?:\.\d+)?)")


def gem_power(pool: str) -> float | None:
    """p of a `gem<p>` pool; None for `avg`. Anything else is a configuration error."""
    if pool == "avg":
        return None
    m = _GEM.fullmatch(pool)
    if m is None or float(m.group(1)) < 1:
        raise ConfigurationError(f"unknown backbone pool {pool!r}: 'avg' or 'gem<p>' with p ≥ 1 (e.g. 'gem4')")
    return float(m.group(1))


def gem(x: torch.Tensor, p: float) -> torch.Tensor:
    """(N, C, H, W) non-negative activations → (N, C) generalised means."""
    return _power(x.clamp(min=1e-6), p).mean((2, 3)).pow(1.0 / p)


def _power(x: torch.Tensor, p: float) -> torch.Tensor:
    # A whole p as products: ONNX Runtime's Pow goes through exp and log (GeM at p 4 cost the whole
    # picture 7 % more CPU that way; bench/backbone_speed.py --pool avg --pool gem4).
    if not float(p).is_integer() or not 1 <= p <= 8:
        return x.pow(p)
    out, base, n = None, x, int(p)
    while n:
        if n & 1:
            out = base if out is None else out * base
        n >>= 1
        if n:
            base = base * base
    assert out is not None
    return out


def pooled(network: Any, timm: bool, gem_p: float | None, x: torch.Tensor) -> torch.Tensor:
    """A backbone's pooled output of normalised images: the one forward pass every path shares (ONNX
    export, eager CPU and CUDA, fine-tuning). With `gem_p` (a timm network: its final map) the
    average and the GeM pool side by side, (N, 2C): the classifier reads the average it was trained
    on (zero-training from GeM logits scored 0.229 against 0.242), the head and the neighbour bank
    the GeM half (`Backbone.split`)."""
    if not timm:
        return network(x)  # torchvision: the classifier is detached, the model pools itself
    features = network.forward_features(x)
    avg = network.forward_head(features, pre_logits=True)
    if gem_p is None:
        return avg
    return torch.cat([avg, gem(features.float(), gem_p).to(avg.dtype)], dim=1)
