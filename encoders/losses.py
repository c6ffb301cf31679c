"""Losses for the head: predictions and targets are (B, dim) unit vectors.

- `regression`: 1 - cosine(prediction, target).
- `infonce`: symmetric in-batch InfoNCE; every other caption in the batch is a negative.
- `ridge` (no loss to descend): the closed-form least-squares fit of a linear head (`encoders/ridge.py`).
- `soft-contrastive`: InfoNCE with soft targets. The target distribution for image i over the
  batch's captions is softmax(sim(caption_i, caption_j) / target_temperature): captions that say
  nearly the same as i's share the positive mass, so only *dissimilar* captions act as negatives.
  That is how negatives are chosen by caption dissimilarity — a batch of clip-art has many near
  duplicates ("red apple", "apple") that plain InfoNCE would push apart.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from jointspace.choices import LOSSES, LossName


def regression_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (1.0 - (pred * target).sum(dim=-1)).mean()


def infonce_loss(pred: torch.Tensor, target: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    logits = pred @ target.T / temperature
    labels = torch.arange(len(pred), device=pred.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def soft_contrastive_loss(
    pred: torch.Tensor, target: torch.Tensor, temperature: float = 0.05, target_temperature: float = 0.02
) -> torch.Tensor:
    logits = pred @ target.T / temperature
    with torch.no_grad():
        soft = F.softmax(target @ target.T / target_temperature, dim=-1)
    image_to_text = -(soft * F.log_softmax(logits, dim=-1)).sum(-1).mean()
    text_to_image = -(soft * F.log_softmax(logits.T, dim=-1)).sum(-1).mean()  # soft is symmetric
    return 0.5 * (image_to_text + text_to_image)


def compute_loss(
    name: LossName,
    pred: torch.Tensor,
    target: torch.Tensor,
    temperature: float = 0.05,
    target_temperature: float = 0.02,
) -> torch.Tensor:
    if name == "regression":
        return regression_loss(pred, target)
    if name == "infonce":
        return infonce_loss(pred, target, temperature)
    if name == "soft-contrastive":
        return soft_contrastive_loss(pred, target, temperature, target_temperature)
    raise ValueError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")
