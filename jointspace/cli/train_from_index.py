"""`jointspace train --from-index`: the command-line side of encoders/from_index.py."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import typer


def run_from_index(
    loss: str,
    epochs: int,
    seed: int,
    out: Path | None,
    latest: bool,
    since: str | None,
    holdout: str,
    holdout_share: float,
    as_json: bool,
) -> None:
    """Loads the current bundle and its index, trains, prints the three scores side by side."""
    from jointspace.alerts.service import parse_since
    from jointspace.app import open_bundle
    from jointspace.backends import open_backend
    from jointspace.backends.kept_features import KeptFeatureStore, backbone_key, existing_kept_features, features_dir
    from jointspace.encoders.from_index import FromIndexOptions, train_from_index
    from jointspace.encoders.training import TrainConfig
    from jointspace.errors import ConfigurationError
    from jointspace.protocols import FeatureImageEncoder
    from jointspace.settings import get_settings

    started = time.perf_counter()
    settings = get_settings()
    bundle = open_bundle(settings)
    image = bundle.image
    if not isinstance(image, FeatureImageEncoder):
        raise ConfigurationError(
            f"the current bundle {bundle.name!r} has no separate backbone and head: no image features are kept "
            "for it; reindex into a trained or zero-training bundle first"
        )
    if existing_kept_features(settings.home, image.backbone_spec) is None:
        raise ConfigurationError(
            f"no image features kept under {features_dir(settings.home)} for the backbone of {bundle.name!r}: "
            "ingest posts first (workers keep them unless JOINTSPACE_KEPT_FEATURES_MAX=0)"
        )
    kept = KeptFeatureStore(
        features_dir(settings.home),
        backbone_key(image.backbone_spec),
        image.feature_dim,
        max(settings.kept_features_max, 1),  # reads only: the bound is the workers' to apply
    )
    backend = open_backend(settings, bundle.name, bundle.dim, read_only=True)
    options = FromIndexOptions(
        since=parse_since(since),
        holdout=holdout,
        holdout_share=holdout_share,
        train=replace(TrainConfig(), loss=loss, epochs=epochs, seed=seed),  # type: ignore[arg-type]  # loss: checked str
    )
    folder = out or settings.models_dir / f"from-index-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    try:
        report = train_from_index(settings, bundle, backend, kept, options, folder, latest, progress=not as_json)
    finally:
        kept.close()
        backend.close()
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=1))
        return
    p = report.p10
    typer.echo(
        f"bundle {report.folder} ({report.bundle})\n"
        f"  trained on {report.trained_on} indexed posts; held out {report.held_out}\n"
        f"  keyword P@10 on {report.test_posts} held-out posts ({report.queries} one-word queries; the other "
        f"{report.val_posts} chose epoch {report.best_epoch} and zero-training weight {report.zeroshot_weight:g}):\n"
        f"    zero-training   {p['zero_training']:.3f}\n"
        f"    current bundle  {p['current_bundle']:.3f}  ({report.current})\n"
        f"    new head        {p['new_head']:.3f}\n"
        f"  {time.perf_counter() - started:.0f} s in all{'; now the default bundle' if latest else ''}\n"
        f"  next: jointspace reindex --bundle {report.folder}   (the head runs on the kept features)"
    )
