"""Training the projection head on cached backbone features. Library code: no CLI, no printing.

Each epoch shows every training image once, in one of its cached variants (clean or augmented)
picked at random, so augmentation costs nothing after the features are cached.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from jointspace.encoders.head import HeadConfig, ProjectionHead
from jointspace.encoders.losses import LossName, compute_loss
from tqdm import tqdm


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one head. Defaults are the winners of docs/eval-report.md."""

    loss: LossName = "soft-contrastive"
    epochs: int = 60
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.05
    temperature: float = 0.05
    target_temperature: float = 0.02
    hidden: int = 1024
    dropout: float = 0.3
    patience: int = 12  # epochs without a better validation score before stopping
    seed: int = 0
    # loss `ridge`: the L2 penalty of the closed-form linear head (per 1,000 pictures, on standardised features)
    ridge_lambda: float = 1000.0

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class TrainResult:
    head: ProjectionHead
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = float("-inf")
    seconds: float = 0.0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _ridge(
    variants: Sequence[np.ndarray],
    targets: np.ndarray,
    config: TrainConfig,
    validate: Callable[[ProjectionHead], float] | None,
    started: float,
) -> TrainResult:
    """One closed-form fit on every cached variant of every image (no epochs: `best_epoch` is 1)."""
    from jointspace.encoders.ridge import fit_ridge

    features = np.concatenate([np.asarray(v, np.float32) for v in variants])
    head = fit_ridge(features, np.tile(np.asarray(targets, np.float32), (len(variants), 1)), config.ridge_lambda)
    score = validate(head) if validate else 0.0
    return TrainResult(head, [{"epoch": 1, "loss": 0.0, "val": score}], 1, score, time.perf_counter() - started)


def train_head(
    variants: Sequence[np.ndarray],
    targets: np.ndarray,
    config: TrainConfig,
    validate: Callable[[ProjectionHead], float] | None = None,
    checkpoint: Path | None = None,
    progress: bool = True,
    keep_last: bool = False,
) -> TrainResult:
    """Fit a head mapping features to targets.

    `variants`: one (N, F) feature array per cached variant of the same N images.
    `validate(head) -> score` (higher is better) runs after each epoch; the best epoch's weights
    are kept (and saved to `checkpoint`), and training stops after `patience` epochs without gain.
    Without `validate`, the training loss decides; with `keep_last`, every epoch runs and the last
    weights are kept (a fixed schedule, chosen outside the run).
    """
    seed_everything(config.seed)
    started = time.perf_counter()
    if config.loss == "ridge":
        return _ridge(variants, targets, config, validate, started)
    stack = torch.from_numpy(np.stack([np.asarray(v, np.float32) for v in variants]))  # (V, N, F)
    n_variants, n, in_dim = stack.shape
    target_t = torch.from_numpy(np.asarray(targets, np.float32))
    head = ProjectionHead(
        HeadConfig(in_dim=in_dim, out_dim=target_t.shape[1], hidden=config.hidden, dropout=config.dropout)
    )
    opt = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, config.epochs))
    gen = torch.Generator().manual_seed(config.seed)
    result = TrainResult(head=head)
    best_state = copy.deepcopy(head.state_dict())
    stale = 0
    bar = tqdm(range(config.epochs), desc=f"train {config.loss}", unit="epoch", disable=not progress)
    for epoch in bar:
        head.train()
        order = torch.randperm(n, generator=gen)
        pick = torch.randint(0, n_variants, (n,), generator=gen)
        total, batches = 0.0, 0
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            if len(idx) < 2:
                continue
            pred = head(stack[pick[idx], idx])
            loss = compute_loss(config.loss, pred, target_t[idx], config.temperature, config.target_temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
            batches += 1
        sched.step()
        train_loss = total / max(batches, 1)
        score = validate(head) if validate else (float(epoch) if keep_last else -train_loss)
        result.history.append({"epoch": epoch + 1, "loss": train_loss, "val": score})
        bar.set_postfix(loss=f"{train_loss:.4f}", val=f"{score:.4f}")
        if score > result.best_score:
            result.best_score, result.best_epoch, stale = score, epoch + 1, 0
            best_state = copy.deepcopy(head.state_dict())
            if checkpoint is not None:
                checkpoint.parent.mkdir(parents=True, exist_ok=True)
                torch.save(
                    {
                        "state_dict": best_state,
                        "epoch": epoch + 1,
                        "score": score,
                        "head": head.config.to_json(),
                        "train": config.to_json(),
                    },
                    checkpoint,
                )
        else:
            stale += 1
            if stale >= config.patience:
                break
    head.load_state_dict(best_state)
    head.eval()
    result.seconds = time.perf_counter() - started
    return result
