"""Re-embedding with a new model bundle: fill a new index from the stored posts, catch up on posts
written to the old one meanwhile, and swap.

It speaks only the backend contract (`jointspace.protocols.IndexLifecycle`, backends/lifecycle.py):
the backend stages the new index, swaps it in and keeps or drops the old one (Elasticsearch: a
versioned index behind the alias, swapped by one atomic alias update; embedded: a staging folder
swapped by two renames, whose writers must be stopped for the swap), and says whether the catch-up
runs before or after the swap.

When the workers kept the posts' image features (backends/kept_features.py) for the new bundle's
backbone, only its head runs, on those features: no picture is read or decoded. Posts without kept
features (dropped past the bound, ingested before keeping, or another backbone) are decoded and
embedded in full, and the report says how many went each way."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from jointspace.workers.batch_indexing import BatchOutcome, BatchRunner
from tqdm import tqdm

from jointspace.errors import ConfigurationError
from jointspace.protocols import IndexLifecycle, SearchBackend
from jointspace.records import IndexRef, Post
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
                    _add(total, outcome)
                    counts["from_kept_features"] = counts.get("from_kept_features", 0) + len(have)
                posts = [p for p in posts if p.id not in stored]
            if posts:
                _add(total, runner.run(posts, skip_unchanged=False))
                counts["decoded"] = counts.get("decoded", 0) + len(posts)
    return total


def _add(total: BatchOutcome, outcome: BatchOutcome) -> None:
    """In place: `BatchOutcome.merged` copies the whole so far at every batch (quadratic over an index)."""
    total.indexed += outcome.indexed
    total.dead.update(outcome.dead)
    total.withheld += outcome.withheld


def _how(bundle: Any, had_features: bool, keeper: Any) -> tuple[Any, str]:
    """(the store to read kept features from, or None; a sentence saying which way the reindex goes)."""
    from jointspace.protocols import FeatureImageEncoder

    image = bundle.image
    if not isinstance(image, FeatureImageEncoder):
        return None, (
            f"bundle {bundle.name!r} has no separate backbone and head ({image.name!r}): "
            "every picture is decoded and embedded again"
        )
    spec = image.backbone_spec
    # The pool is part of the identity: features kept average-pooled (bundles before GeM) do not serve a
    # GeM-pooled bundle of the same network.
    backbone = f"{spec.get('name')}, {spec.get('pool') or 'avg'} pool"
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


def reindex(
    settings: Settings, bundle_dir: Path, keep_old: bool = True, progress: bool = True, decode_again: bool = False
) -> dict[str, Any]:
    """Blocks until done; returns what it did (the same keys for both backends).

    `decode_again`: embed from the pictures, never from kept features; this also allows the bundle
    the index already holds (its vectors redone in place, e.g. after an upgrade changed decoding)."""
    from jointspace.backends.lifecycle import open_lifecycle
    from jointspace.encoders.bundle import open_model_bundle

    lifecycle = open_lifecycle(settings)
    try:
        live = lifecycle.live()
        if live is None:
            raise ConfigurationError(f"no index behind {lifecycle.where}: nothing to reindex")
        new_settings = settings.model_copy(update={"model": bundle_dir})
        bundle = open_model_bundle(new_settings)
        if live.model == bundle.name and not decode_again:
            raise ConfigurationError(
                f"the index behind {lifecycle.where} ({live.name}) was already built by bundle {bundle.name!r}; "
                "`jointspace model list` shows the other bundles to reindex into (or pass --decode-again "
                "to embed every picture again with this one)"
            )
        staged = lifecycle.stage(bundle.name, bundle.dim)
        filled, caught, how, retired = _fill(new_settings, bundle, lifecycle, live, staged, progress, decode_again)
        now = lifecycle.live()
        withheld = _remove_taken_down(settings, lifecycle, now)
        dropped: list[str] = []
        if not keep_old and retired is not None:
            lifecycle.drop(retired)
            dropped = [retired.name]
        return _report(
            (retired or live).name,
            now.name if now else staged.name,
            bundle.name,
            filled,
            caught,
            dropped,
            # The catch-up meets a post the fill left out again (the old index still holds it).
            {
                **how,
                "withheld": len({*filled.withheld, *caught.withheld, *withheld}),
                # Without it every search is refused: the index no longer holds the default's vectors.
                "hint": f"search, serve and ingest with JOINTSPACE_MODEL={bundle_dir} unless bundle "
                f"{bundle.name!r} is the default (`jointspace model list` marks it *); "
                "`jointspace rollback` undoes this",
            },
        )
    finally:
        lifecycle.close()


def _remove_taken_down(settings: Settings, lifecycle: IndexLifecycle, now: IndexRef | None) -> list[str]:
    """Posts taken down while the new index was filling were copied before their takedown reached
    the old one: they leave the new one here, after the swap (writers follow it, so none comes back)."""
    from jointspace.backends.takedown_register import remove_taken_down

    if now is None:
        return []
    backend = lifecycle.open_index(now)
    try:
        return remove_taken_down(settings, backend)
    finally:
        backend.close()


def _fill(
    settings: Settings,
    bundle: Any,
    lifecycle: IndexLifecycle,
    live: IndexRef,
    staged: IndexRef,
    progress: bool,
    decode_again: bool = False,
) -> tuple[BatchOutcome, BatchOutcome, dict[str, Any], IndexRef | None]:
    """Copy live → staged with the new bundle's encoder, swap and catch up on what arrived meanwhile
    (in the order the backend asks for); returns what was done and the index the swap retired."""
    from jointspace.backends.kept_features import existing_kept_features
    from jointspace.workers.runtime import open_context

    from jointspace.protocols import FeatureImageEncoder

    old = lifecycle.open_index(live)
    new = lifecycle.open_index(staged)
    # Decided before the context opens its own store (which creates the file for this backbone).
    image = bundle.image
    had_features = isinstance(image, FeatureImageEncoder) and bool(
        existing_kept_features(settings.home, image.backbone_spec)
    )
    context = open_context(settings, bundle=bundle, backend=new, alerts=False)  # old posts are not news
    kept, how = _how(bundle, had_features, context.kept)
    if decode_again:
        kept, how = None, "--decode-again: every picture is decoded and embedded again"
    if progress:
        print(f"reindex: {how}", file=sys.stderr)
    counts: dict[str, Any] = {"from_kept_features": 0, "decoded": 0}
    retired: IndexRef | None = None
    closed = False

    def catch_up() -> BatchOutcome:
        caught = _copy(old, new, context.runner, settings.batch_size, True, progress, "catch-up", kept, counts)
        new.refresh()
        return caught

    try:
        filled = _copy(old, new, context.runner, settings.batch_size, False, progress, "reindex", kept, counts)
        new.refresh()
        # Recorded media roots travel with the index: the pictures stay servable after the swap.
        new.add_media_roots(old.media_roots())
        if lifecycle.catch_up_after_swap:  # writers follow the swap at once: catch up after it
            retired = lifecycle.swap(staged)
            caught = catch_up()
        else:  # writers holding the old index keep writing into it: catch up, then swap
            caught = catch_up()
            old.close()
            new.close()
            closed = True
            retired = lifecycle.swap(staged)
    finally:
        context.close()  # not `new`, which was handed in
        if not closed:
            old.close()
            new.close()
    return filled, caught, {**counts, "kept_features": how}, retired


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


def rollback(settings: Settings) -> dict[str, Any]:
    """Makes the index the last reindex (or restore) retired live again; the live one is retired in
    its turn, so a second rollback undoes the first. ConfigurationError when none was kept."""
    from jointspace.backends.lifecycle import open_lifecycle
    from jointspace.backends.lifecycle import rollback as roll

    lifecycle = open_lifecycle(settings)
    try:
        live, retired = roll(lifecycle)
        withheld = _remove_taken_down(settings, lifecycle, live)  # taken down since that index retired
    finally:
        lifecycle.close()
    return {
        "live_index": live.name,
        "model": live.model,
        "retired_index": retired.name if retired else None,
        "withheld": len(withheld),
        "hint": f"search, serve and ingest with JOINTSPACE_MODEL set to the folder of bundle {live.model!r}",
    }
