"""Re-embedding with a new model bundle: fill a new versioned index from the stored posts, swap the
alias, then catch up on posts written to the old index meanwhile. Search keeps answering from the
old index until the swap, which is one atomic alias update."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from jointspace.errors import ConfigurationError
from jointspace.protocols import SearchBackend
from jointspace.records import Post
from jointspace.settings import Settings
from jointspace.workers.pipeline import BatchOutcome, BatchRunner


def _batches(backend: SearchBackend, size: int) -> Iterator[list[Post]]:
    batch: list[Post] = []
    for doc in backend.iter_documents(batch_size=max(size, 100)):
        batch.append(doc.post)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _copy(source: SearchBackend, target: SearchBackend, runner: BatchRunner, batch_size: int,
          only_missing: bool, progress: bool, desc: str) -> BatchOutcome:
    total = BatchOutcome()
    with tqdm(total=source.count(), unit="post", desc=desc, disable=not progress) as bar:
        for posts in _batches(source, batch_size):
            bar.update(len(posts))
            if only_missing:
                present = target.get_many([p.id for p in posts], with_vector=False)
                posts = [p for p in posts if p.id not in present]
            if posts:
                outcome = runner.run(posts, skip_unchanged=False)
                total.indexed += outcome.indexed
                total.dead.update(outcome.dead)
    return total


def reindex(settings: Settings, bundle_dir: Path, keep_old: bool = True, progress: bool = True) -> dict[str, Any]:
    """Blocks until done; returns what it did. Elasticsearch only (the embedded store holds one model)."""
    if not settings.es_url:
        raise ConfigurationError("reindex swaps Elasticsearch aliases: set JOINTSPACE_ES_URL. For the embedded "
                                 "backend, point JOINTSPACE_HOME at a new folder and ingest again")
    from jointspace.backends.elasticsearch import ElasticsearchBackend
    from jointspace.es_mappings.client import connect
    from jointspace.es_mappings.manager import IndexManager
    from jointspace.workers.runtime import load_model_bundle, open_context

    client = connect(settings)
    manager = IndexManager(client, settings)
    old_index = manager.current()
    if old_index is None:
        raise ConfigurationError(f"no index behind alias {manager.alias!r}: nothing to reindex")
    meta = manager.meta(old_index)
    new_settings = settings.model_copy(update={"model": bundle_dir})
    bundle = load_model_bundle(new_settings)
    if meta.get("model") == bundle.name:
        raise ConfigurationError(f"index {old_index!r} was already built by bundle {bundle.name!r}")
    # By index name, not alias: after the swap the alias names the new index.
    old = ElasticsearchBackend(client, settings, str(meta["model"]), int(meta["dim"]), old_index,
                               str(meta.get("index_options", "")).startswith("int8"))
    new_index = manager.create(bundle.name, bundle.dim)
    quantized = str(manager.meta(new_index).get("index_options", "")).startswith("int8")
    # The backend addresses an index by name exactly as by alias: write straight into the new one.
    new = ElasticsearchBackend(client, settings, bundle.name, bundle.dim, new_index, quantized)
    context = open_context(new_settings, bundle=bundle, backend=new)
    try:
        filled = _copy(old, new, context.runner, settings.batch_size, False, progress, "reindex")
        new.refresh()
        manager.point_alias(new_index)
        # Posts that reached the old index while we copied (writers used the alias until the swap).
        caught = _copy(old, new, context.runner, settings.batch_size, True, progress, "catch-up")
        new.refresh()
        dropped = [] if keep_old else manager.drop_old()
    finally:
        context.executor.shutdown()
        context.dead_letters.close()
    return {"old_index": old_index, "new_index": new_index, "model": bundle.name,
            "indexed": len(filled.indexed) + len(caught.indexed), "caught_up": len(caught.indexed),
            "dead_lettered": {**filled.dead, **caught.dead}, "dropped": dropped}
