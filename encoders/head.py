"""The trained projection head: backbone features → the text encoder's space, unit length."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class HeadConfig:
    in_dim: int = 1280
    out_dim: int = 384
    hidden: int = 1024  # 0: a linear head (one Linear layer, as the closed-form ridge fit makes)
    dropout: float = 0.3  # on the input features: the backbone's 1280 features are highly redundant

    def to_json(self) -> dict[str, object]:
        return asdict(self)


class ProjectionHead(nn.Module):
    """Dropout → Linear → GELU → Linear → L2 normalise (`hidden` 0: Dropout → Linear → L2 normalise)."""

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = [nn.Dropout(config.dropout)]
        if config.hidden:
            layers += [nn.Linear(config.in_dim, config.hidden), nn.GELU(), nn.Linear(config.hidden, config.out_dim)]
        else:
            layers.append(nn.Linear(config.in_dim, config.out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(features), dim=-1)
