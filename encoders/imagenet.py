"""ImageNet-1k classes as text, offline: their names (torchvision's weights metadata) and, for the
WordNet prior, their lemmas and hypernym chain (`imagenet_wordnet.json`, made from Debian's
`wordnet-base` by scripts/imagenet_wordnet.py and committed).

A class prior says which texts stand for a class and how much each weighs; the class's vector is the
weighted sum of the texts' unit embeddings, normalised (`image_encoders.class_prompt_matrix`).
- `prompt`: "a photo of a {name}" alone (the first baseline).
- `wordnet`: that prompt plus each of the nearest `levels` hypernyms ("a photo of a {hypernym}") at
  `hypernym_weight`, so that general words (animal, food, vehicle) reach pictures whose top class is
  a specific kind. A trial (RETRIEVAL-NOTES) found six levels at half weight best on category words.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from jointspace.errors import ConfigurationError

WORDNET_FILE = Path(__file__).resolve().parent / "imagenet_wordnet.json"
PriorName = Literal["prompt", "wordnet"]


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """The 1000 class names in the standard index order (e.g. 0 'tench', 817 'sports car')."""
    from torchvision.models import ResNet18_Weights

    return tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def class_prompt(name: str) -> str:
    return f"a photo of a {name}"


@lru_cache(maxsize=1)
def wordnet_classes() -> tuple[dict[str, Any], ...]:
    """Per class, in index order: synset id, lemmas, hypernym lemmas (nearest first), gloss."""
    return tuple(json.loads(WORDNET_FILE.read_text(encoding="utf-8"))["classes"])


@dataclass(frozen=True)
class ClassPrior:
    """How ImageNet classes become text (stored in a bundle's manifest as `class_prior`)."""

    name: PriorName = "prompt"
    levels: int = 6
    hypernym_weight: float = 0.5

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ClassPrior:
        """A manifest's `class_prior`; absent (bundles written before the WordNet prior): `prompt`."""
        if not data:
            return cls()
        if data.get("name") not in ("prompt", "wordnet"):
            raise ConfigurationError(f"unknown class prior {data.get('name')!r}; choose from prompt, wordnet")
        name = str(data["name"])  # "prompt" or "wordnet", as tested above
        return cls(name, int(data.get("levels", 6)), float(data.get("hypernym_weight", 0.5)))  # type: ignore[arg-type]  # name: tested

    @property
    def label(self) -> str:
        return "prompt" if self.name == "prompt" else f"wordnet-{self.levels}x{self.hypernym_weight:g}"


DEFAULT_PRIOR = ClassPrior("wordnet")


def class_texts(prior: ClassPrior) -> list[list[tuple[str, float]]]:
    """Per class (index order), the (text, weight) pairs whose embeddings make its vector."""
    names = imagenet_classes()
    if prior.name == "prompt":
        return [[(class_prompt(n), 1.0)] for n in names]
    out = []
    for name, wn in zip(names, wordnet_classes(), strict=True):
        texts = [(class_prompt(name), 1.0)]
        texts += [(class_prompt(h[0]), prior.hypernym_weight) for h in wn["hypernyms"][: prior.levels]]
        out.append(texts)
    return out
