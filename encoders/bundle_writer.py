"""A trained head written as a model bundle folder: weights, class matrix, word model and manifest.

Apart from `training_runs` (which trains the head) so that what a bundle holds is read in one place.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jointspace.encoders.backbone import BackboneSpec
from jointspace.encoders.bundle import probe_vectors, set_latest, write_manifest
from jointspace.encoders.training_runs import TrainedHead

from jointspace.settings import Settings


def save_trained(
    trained: TrainedHead, out: Path, settings: Settings, metrics: dict[str, Any] | None = None, make_latest: bool = True
) -> Path:
    """Write a bundle folder for a trained head (and its word model, if any) and point `latest` at it."""
    out.mkdir(parents=True, exist_ok=True)
    o = trained.options
    torch.save(trained.result.head.state_dict(), out / "head.pt")
    np.save(out / "classes.npy", trained.class_matrix)
    neighbours = trained.neighbours if o.neighbour_weight > 0 else None
    if neighbours is not None:
        neighbours.save(out / "neighbours.npz")
    text_config: dict[str, Any] = {}
    if trained.word_model is not None:
        (out / "text").mkdir(exist_ok=True)
        trained.word_model.save(str(out / "text" / f"{o.text}.model"))
        text_config["path"] = f"text/{o.text}.model"
    elif o.text == "minilm":
        text_config["vocab_size"] = settings.text_vocab_size
    weights = trained.backbone_weights or (str(settings.backbone_weights) if settings.backbone_weights else None)
    spec = BackboneSpec(settings.backbone, weights, pool=settings.backbone_pool)
    name = f"{o.text}-{spec.name.replace('efficientnet_', '').replace('_', '-')}-{o.train.loss}-{o.targets}"
    if trained.backbone_weights:
        name += "-finetuned"
    # Indexes record the bundle name and refuse queries from another: a retrained head must get a new
    # one, so the name ends in a digest of what makes the image vectors (backbone spec with its pool,
    # weights and blend weight).
    digest = hashlib.sha256((out / "head.pt").read_bytes() + f"|{trained.zeroshot_weight}".encode())
    digest.update(json.dumps(spec.to_json(), sort_keys=True).encode())
    if neighbours is not None:
        digest.update((out / "neighbours.npz").read_bytes() + f"|{o.neighbour_weight}".encode())
    if trained.backbone_weights:
        digest.update((out / trained.backbone_weights).read_bytes())
    name += f"-{digest.hexdigest()[:8]}"
    manifest = {
        "name": name,
        "dim": trained.text.dim,
        "text": {"name": o.text, "config": text_config, "dim": trained.text.dim, "probe": probe_vectors(trained.text)},
        "image": {
            "name": "head",
            "config": {
                "backbone": spec.to_json(),
                "head": trained.result.head.config.to_json(),
                "weights": "head.pt",
                "zeroshot_weight": trained.zeroshot_weight,
                "top_k": settings.zeroshot_top_k,
                "class_matrix": "classes.npy",
                "class_prior": o.prior.to_json(),
                **(
                    {"neighbours": "neighbours.npz", "neighbour_weight": o.neighbour_weight}
                    if neighbours is not None
                    else {}
                ),
            },
        },
        "loss": o.train.loss,
        "targets": o.targets,
        "training": {
            "sources": list(o.train_sources),
            "data_sources": list(trained.data_sources),
            "validation": trained.val_scores.get("validation"),
            "items": trained.n_train,
            "data_hash": trained.data_hash,
            "augment": list(o.augment),
            "parts": list(o.parts),
            "prior_target_weight": o.prior_target_weight,
            **(
                {
                    "neighbours": {
                        "pictures": len(neighbours.keys),
                        "k": neighbours.k,
                        "temperature": neighbours.temperature,
                    }
                }
                if neighbours is not None
                else {}
            ),
            "max_per_source": trained.max_per_source,
            "config": o.train.to_json(),
            "best_epoch": trained.result.best_epoch,
            "seconds": round(trained.result.seconds, 1),
            "history": trained.result.history,
        },
        "metrics": {
            "validation_keyword_p10": {k: v for k, v in trained.val_scores.items() if k != "validation"},
            **(metrics or {}),
        },
    }
    write_manifest(out, manifest)
    if make_latest:
        set_latest(out, settings)
    return out
