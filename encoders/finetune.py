"""Optional fine-tuning of the backbone's last blocks together with the head (meant for a GPU).

On CUDA it runs under AMP (float16 autocast with a gradient scaler) in channels_last memory
format; on CPU it runs in float32, which is only sensible for a smoke test.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from jointspace.encoders.augment import apply_variant
from jointspace.encoders.backbone import Backbone
from jointspace.encoders.head import ProjectionHead
from jointspace.encoders.losses import LossName, compute_loss
from jointspace.encoders.targets import build_targets
from jointspace.encoders.training_runs import training_items
from PIL import Image
from tqdm import tqdm


def trainable_tail(model: torch.nn.Module, blocks: int) -> list[torch.nn.Parameter]:
    """Unfreeze the last `blocks` stages (timm EfficientNet: `blocks`, then `conv_head`/`bn2`)."""
    model.requires_grad_(False)
    parts: list[torch.nn.Module] = []
    stages = getattr(model, "blocks", None)  # timm's stages: a Sequential, reached by name
    if stages is not None:
        parts += list(stages)[-blocks:]
    parts += [getattr(model, n) for n in ("conv_head", "bn2") if hasattr(model, n)]
    for p in parts:
        p.requires_grad_(True)
    return [p for part in parts for p in part.parameters()]


def finetune_step(
    backbone: Backbone,
    head: ProjectionHead,
    images: torch.Tensor,
    targets: torch.Tensor,
    loss_name: LossName,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
) -> float:
    """One optimisation step on a batch of normalised image tensors; returns the loss."""
    device = backbone.device
    x = images.to(device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
        feats = backbone.head_part(backbone.pooled_eager(x))
    pred = head(feats.float())
    loss = compute_loss(loss_name, pred, targets.to(device))
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.item()


def finetune(
    backbone: Backbone,
    head: ProjectionHead,
    items: Sequence[Any],
    targets: torch.Tensor,
    loss_name: LossName,
    steps: int,
    blocks: int = 2,
    lr: float = 1e-4,
    batch_size: int = 32,
    seed: int = 0,
) -> tuple[Backbone, ProjectionHead, list[float]]:
    """Fine-tune copies of the backbone tail and the head for `steps` batches of augmented images."""
    backbone = copy.copy(backbone)
    backbone.model = copy.deepcopy(backbone.model).to(backbone.device)
    head = copy.deepcopy(head).to(backbone.device)
    params = trainable_tail(backbone.model, blocks) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    scaler = torch.amp.GradScaler(backbone.device.type, enabled=backbone.device.type == "cuda")
    rng = random.Random(seed)
    backbone.model.train()
    head.train()
    losses = []
    for step in tqdm(range(steps), desc="fine-tune", unit="step", disable=steps < 5):
        idx = rng.sample(range(len(items)), min(batch_size, len(items)))
        batch = []
        for i in idx:
            with Image.open(items[i].post.image) as im:
                variant = rng.choice(("clean", "crop-colour", "icon-blur"))
                batch.append(backbone.transform(apply_variant(variant, im.convert("RGB"), f"{step}:{i}")))
        losses.append(finetune_step(backbone, head, torch.stack(batch), targets[idx], loss_name, optimizer, scaler))
    backbone.model.eval().requires_grad_(False)
    head.eval().cpu()
    return backbone, head, losses


def finetune_last_blocks(ws: Any, trained: Any, steps: int, out: Path, blocks: int = 2) -> list[float]:
    """Fine-tune after `train_one`; writes `backbone.pt` into the bundle folder `out`."""
    items = training_items(ws, trained.options)
    targets, usable = build_targets(trained.text, items, trained.options.targets)
    items = [it for it, ok in zip(items, usable, strict=True) if ok]
    tuned, head, losses = finetune(
        ws.cache.backbone,
        trained.result.head,
        items,
        torch.from_numpy(targets[usable]),
        trained.options.train.loss,
        steps,
        blocks,
    )
    out.mkdir(parents=True, exist_ok=True)
    torch.save(tuned.model.state_dict(), out / "backbone.pt")
    trained.result.head = head
    trained.backbone_weights = "backbone.pt"
    return losses
