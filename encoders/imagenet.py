"""ImageNet-1k class names, offline: torchvision ships them in its weights metadata (no download)."""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """The 1000 class names in the standard index order (e.g. 0 'tench', 817 'sports car')."""
    from torchvision.models import ResNet18_Weights

    return tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def class_prompt(name: str) -> str:
    return f"a photo of a {name}"
