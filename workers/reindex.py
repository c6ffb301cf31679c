"""Re-embedding with a new model bundle: fill a new index from the stored posts, catch up on posts
written to the old one meanwhile, and swap.

Elasticsearch: a new versioned index, swapped by one atomic alias update; search keeps answering
from the old index until then. Embedded: a staging folder beside the store, swapped by two renames;
processes that hold the old store open (`serve`, a running `ingest`) keep using it until restarted
with the new `JOINTSPACE_MODEL`, so stop writers for the swap.

When the workers kept the posts' image features (backends/kept_features.py) for the new bundle's
backbone, only its head runs, on those features: no picture is read or decoded. Posts without kept
features (dropped past the bound, ingested before keeping, or another backbone) are decoded and
embedded in full, and the report says how many went each way."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from jointspace.workers.batch_indexing import BatchOutcome, BatchRunner
from tqdm import tqdm

from jointspace.errors import ConfigurationError
from jointspace.protocols import SearchBackend
from jointspace.records import Post
from jointspace.settings import Settings


def _batches(backend: SearchBackend, size: int) -> Iterator[list[Post]]:
    batch: list[Post] = []
    for doc in backend.iter_documents(batch_size=max(size, 100)):
        batch.append(doc.post)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _copy(
    source: SearchBackend,
    target: SearchBackend,
    runner: BatchRunner,
    batch_size: int,
    only_missing: bool,
    progress: bool,
    desc: str,
    kept: Any = None,
    counts: dict[str, int] | None = None,
) -> BatchOutcome:
    """`kept`: the kept-features store of the new bundle's backbone; its posts skip the decoder.
    `counts` adds up the posts embedded each way (`from_kept_features`, `decoded`)."""
    counts = counts if counts is not None else {}
    total = BatchOutcome()
    with tqdm(total=source.count(), unit="post", desc=desc, disable=not progress) as bar:
        for posts in _batches(source, batch_size):
            bar.update(len(posts))
            if only_missing:
                present = target.get_many([p.id for p in posts], with_vector=False)
                posts = [p for p in posts if p.id not in present]
            if posts and kept is not None:
                stored = kept.get_many([p.id for p in posts])
                have = [p for p in posts if p.id in stored]
                if have:
                    outcome = runner.run_from_features(have, np.stack([stored[p.id] for p in have]))
                    total.indexed += outcome.indexed
                    total.dead.update(outcome.dead)
                    counts["from_kept_features"] = counts.get("from_kept_features", 0) + len(have)
                posts = [p for p in posts if p.id not in stored]
            if posts:
                outcome = runner.run(posts, skip_unchanged=False)
                total.indexed += outcome.indexed
                total.dead.update(outcome.dead)
                counts["decoded"] = counts.get("decoded", 0) + len(posts)
    return total


def _how(bundle: Any, had_features: bool, keeper: Any) -> tuple[Any, str]:
    """(the store to read kept features from, or None; a sentence saying which way the reindex goes)."""
    from jointspace.protocols import FeatureImageEncoder

    image = bundle.image
    if not isinstance(image, FeatureImageEncoder):
        return None, (
            f"bundle {bundle.name!r} has no separate backbone and head ({image.name!r}): "
            "every picture is decoded and embedded again"
        )
    backbone = image.backbone_spec.get("name")
    if not had_features:
        return None, (
            f"no image features are kept for the backbone of bundle {bundle.name!r} ({backbone}: another "
            "backbone than the workers used, or nothing kept yet): every picture is decoded and embedded again"
        )
    if keeper is None:
        return None, "JOINTSPACE_KEPT_FEATURES_MAX=0 (keeping is off): every picture is decoded and embedded again"
    return keeper, (
        f"same backbone ({backbone}): the head runs on the kept image features, no picture is decoded; "
        "posts without kept features are decoded and embedded in full"
    )


def reindex(settings: Settings, bundle_dir: Path, keep_old: bool = True, progress: bool = True) -> dict[str, Any]:
    """Blocks until done; returns what it did (the same keys for both backends)."""
    if settings.es_url:
        return _reindex_elasticsearch(settings, bundle_dir, keep_old, progress)
    return _reindex_embedded(settings, bundle_dir, keep_old, progress)


def _fill(
    settings: Settings, bundle: Any, old: SearchBackend, new: SearchBackend, progress: bool, swap: Callable[[], None]
) -> tuple[BatchOutcome, BatchOutcome, dict[str, Any]]:
    """Copy old → new with the new bundle's encoder, swap, then catch up on what arrived meanwhile."""
    from jointspace.backends.kept_features import existing_kept_features
    from jointspace.workers.runtime import open_context

    from jointspace.protocols import FeatureImageEncoder

    # Decided before the context opens its own store (which creates the file for this backbone).
    image = bundle.image
    had_features = isinstance(image, FeatureImageEncoder) and bool(
        existing_kept_features(settings.home, image.backbone_spec)
    )
    context = open_context(settings, bundle=bundle, backend=new, alerts=False)  # old posts are not news
    kept, how = _how(bundle, had_features, context.kept)
    if progress:
        print(f"reindex: {how}", file=sys.stderr)
    counts: dict[str, Any] = {"from_kept_features": 0, "decoded": 0}
    try:
        filled = _copy(old, new, context.runner, settings.batch_size, False, progress, "reindex", kept, counts)
        new.refresh()
        # Recorded media roots travel with the index: the pictures stay servable after the swap.
        new.add_media_roots(old.media_roots())
        swap()
        caught = _copy(old, new, context.runner, settings.batch_size, True, progress, "catch-up", kept, counts)
        new.refresh()
    finally:
        context.executor.shutdown()
        context.dead_letters.close()
        if context.kept is not None:
            context.kept.close()
    return filled, caught, {**counts, "kept_features": how}


def _report(
    old: str,
    new: str,
    model: str,
    filled: BatchOutcome,
    caught: BatchOutcome,
    dropped: list[str],
    how: dict[str, Any],
) -> dict[str, Any]:
    return {
        "old_index": old,
        "new_index": new,
        "model": model,
        "indexed": len(filled.indexed) + len(caught.indexed),
        "caught_up": len(caught.indexed),
        "dead_lettered": {**filled.dead, **caught.dead},
        "dropped": dropped,
        # How the vectors were made: posts embedded from kept image features (the head alone) and
        # posts decoded and embedded in full, with a sentence saying why.
        **how,
    }


def _reindex_elasticsearch(settings: Settings, bundle_dir: Path, keep_old: bool, progress: bool) -> dict[str, Any]:
    from jointspace.backends.elasticsearch import ElasticsearchBackend
    from jointspace.es_mappings.client import connect
    from jointspace.es_mappings.manager import IndexManager
    from jointspace.workers.runtime import load_model_bundle

    client = connect(settings)
    manager = IndexManager(client, settings)
    old_index = manager.current()
    if old_index is None:
        raise ConfigurationError(f"no index behind alias {manager.alias!r}: nothing to reindex")
    meta = manager.meta(old_index)
    new_settings = settings.model_copy(update={"model": bundle_dir})
    bundle = load_model_bundle(new_settings)
    if meta.get("model") == bundle.name:
        raise ConfigurationError(
            f"index {old_index!r} was already built by bundle {bundle.name!r}; "
            "`jointspace model list` shows the other bundles to reindex into"
        )
    # By index name, not alias: after the swap the alias names the new index.
    old = ElasticsearchBackend(
        client,
        settings,
        str(meta["model"]),
        int(meta["dim"]),
        old_index,
        str(meta.get("index_options", "")).startswith("int8"),
    )
    new_index = manager.create(bundle.name, bundle.dim)
    quantized = str(manager.meta(new_index).get("index_options", "")).startswith("int8")
    # The backend addresses an index by name exactly as by alias: write straight into the new one.
    new = ElasticsearchBackend(client, settings, bundle.name, bundle.dim, new_index, quantized)
    # Writers use the alias until the swap, so the catch-up runs after it.
    filled, caught, how = _fill(new_settings, bundle, old, new, progress, lambda: manager.point_alias(new_index))
    dropped = [] if keep_old else manager.drop_old()
    return _report(old_index, new_index, bundle.name, filled, caught, dropped, how)


def _reindex_embedded(settings: Settings, bundle_dir: Path, keep_old: bool, progress: bool) -> dict[str, Any]:
    from jointspace.backends.embedded import EmbeddedBackend
    from jointspace.workers.runtime import load_model_bundle

    folder = settings.embedded_dir
    recorded = EmbeddedBackend.recorded_model(folder)
    if recorded is None:
        raise ConfigurationError(f"no embedded index in {folder}: nothing to reindex")
    old_model, old_dim = recorded
    new_settings = settings.model_copy(update={"model": bundle_dir})
    bundle = load_model_bundle(new_settings)
    if old_model == bundle.name:
        raise ConfigurationError(
            f"the embedded index in {folder} was already built by bundle {bundle.name!r}; "
            "`jointspace model list` shows the other bundles to reindex into"
        )
    staging = folder.with_name(f"{folder.name}.reindex")
    shutil.rmtree(staging, ignore_errors=True)  # left by a run that died: its copy is incomplete
    retired = folder.with_name(f"{folder.name}.{old_model}.{time.strftime('%Y%m%d-%H%M%S')}")
    old = EmbeddedBackend(folder, old_model, old_dim)
    new = EmbeddedBackend(staging, bundle.name, bundle.dim)
    try:
        # The swap is a rename, so the catch-up runs before it (through the old store's open handle
        # a late writer still lands in `retired`, kept by default).
        filled, caught, how = _fill(new_settings, bundle, old, new, progress, lambda: None)
    finally:
        old.close()
        new.close()
    folder.rename(retired)
    staging.rename(folder)
    dropped = []
    if not keep_old:
        shutil.rmtree(retired)
        dropped = [str(retired)]
    return _report(str(retired), str(folder), bundle.name, filled, caught, dropped, how)
