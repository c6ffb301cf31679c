"""The index lifecycle of the backend contract (`IndexLifecycle`, backends/lifecycle.py): stage a
new index, fill it, swap it in, roll back and forth, drop a retired one; the same behaviour on the
embedded store (folders) and on the real Elasticsearch node (alias)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from jointspace.backends import open_backend
from jointspace.backends.lifecycle import open_lifecycle, rollback

from jointspace.errors import ConfigurationError
from jointspace.protocols import IndexLifecycle
from jointspace.settings import Settings
from tests.backends.backend_corpus import doc
from tests.backends.backend_support import es_settings


@pytest.fixture(params=["embedded", pytest.param("elasticsearch", marks=pytest.mark.es)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "embedded":
        yield Settings(home=tmp_path)
        return
    made = es_settings(request.getfixturevalue("es_url"), tmp_path)
    yield made
    from elasticsearch import Elasticsearch

    with Elasticsearch(made.es_url or "", request_timeout=30) as client:
        alias = made.es_index_alias  # `<alias>.*`: the takedown register
        client.indices.delete(index=f"{alias}-*,{alias}.*", allow_no_indices=True, expand_wildcards="all")


def unit(seed: int, dim: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def live_ids(settings: Settings, model: str, dim: int) -> set[str]:
    """What search sees now, through the configured name (alias or live folder)."""
    backend = open_backend(settings, model, dim, read_only=True)
    try:
        backend.refresh()
        return {d.id for d in backend.iter_documents()}
    finally:
        backend.close()


def test_stage_swap_rollback_and_drop(settings: Settings) -> None:
    first = open_backend(settings, "model-a", 8)  # the first ingest creates the live index
    first.upsert([doc(f"a{i}", unit(i, 8), model="model-a") for i in range(3)])
    first.refresh()
    first.close()
    lifecycle: IndexLifecycle = open_lifecycle(settings)
    try:
        live = lifecycle.live()
        assert live is not None and (live.model, live.dim) == ("model-a", 8)
        assert lifecycle.retired() == []
        with pytest.raises(ConfigurationError, match="nothing to roll back to"):
            rollback(lifecycle)

        staged = lifecycle.stage("model-b", 4)
        assert lifecycle.live() == live  # staging leaves search where it was
        new = lifecycle.open_index(staged)
        new.upsert([doc(f"b{i}", unit(10 + i, 4), model="model-b") for i in range(5)])
        new.refresh()
        new.close()
        assert live_ids(settings, "model-a", 8) == {"a0", "a1", "a2"}

        retired = lifecycle.swap(staged)
        assert retired is not None and retired.model == "model-a"
        now = lifecycle.live()
        assert now is not None and (now.model, now.dim) == ("model-b", 4)
        assert live_ids(settings, "model-b", 4) == {f"b{i}" for i in range(5)}
        assert lifecycle.retired() == [retired]
        kept = lifecycle.open_index(retired)  # the retired index is whole, for a rollback
        assert kept.count() == 3
        kept.close()

        back, retired_b = rollback(lifecycle)
        assert back.model == "model-a" and retired_b is not None and retired_b.model == "model-b"
        assert live_ids(settings, "model-a", 8) == {"a0", "a1", "a2"}
        # And forth, through the report `workers.reindex.rollback` gives: the rollback retired model-b's index.
        # b3 was taken down while model-b's index lay retired: the rollback leaves it out.
        from jointspace.backends.takedown_register import open_takedowns
        from jointspace.workers.reindex import rollback as rollback_report

        register = open_takedowns(settings)
        register.record(["b3"])
        register.close()
        report = rollback_report(settings)
        assert report["model"] == "model-b" and report["live_index"] == lifecycle.live().name  # type: ignore[union-attr]  # live here
        assert [(r.name, r.model) for r in lifecycle.retired()] == [(report["retired_index"], "model-a")]
        assert report["withheld"] == 1
        assert live_ids(settings, "model-b", 4) == {f"b{i}" for i in range(5)} - {"b3"}

        (old,) = lifecycle.retired()
        current = lifecycle.live()
        assert current is not None
        with pytest.raises(ConfigurationError):
            lifecycle.drop(current)  # never the live one
        lifecycle.drop(old)
        assert lifecycle.retired() == []
        assert live_ids(settings, "model-b", 4) == {f"b{i}" for i in range(5)} - {"b3"}
    finally:
        lifecycle.close()


def test_a_staged_index_left_by_a_dead_run_is_no_rollback_target(settings: Settings) -> None:
    first = open_backend(settings, "model-a", 8)
    first.close()
    lifecycle = open_lifecycle(settings)
    try:
        lifecycle.stage("model-b", 4)  # a reindex that died before its swap
        lifecycle.open_index(lifecycle.stage("model-c", 4)).close()
        assert lifecycle.retired() == []
        with pytest.raises(ConfigurationError, match="nothing to roll back to"):
            rollback(lifecycle)
    finally:
        lifecycle.close()


def test_the_embedded_store_is_not_swapped_under_a_process_that_holds_it(tmp_path: Path) -> None:
    """Such a process would go on writing into the retired folder: refused before any work and at
    the swap, with the live store untouched."""
    settings = Settings(home=tmp_path)
    writer = open_backend(settings, "model-a", 4)
    writer.upsert([doc("p1", unit(1, 4), model="model-a")])
    lifecycle = open_lifecycle(settings)
    try:
        with pytest.raises(ConfigurationError, match="open in another process"):
            lifecycle.stage("model-a", 4)
        writer.close()
        staged = lifecycle.stage("model-a", 4)  # nobody holds it now
        filled = lifecycle.open_index(staged)
        filled.upsert([doc("p1", unit(2, 4), model="model-a")])
        filled.close()
        holder = open_backend(settings, "model-a", 4, read_only=True)
        with pytest.raises(ConfigurationError, match="open in another process"):
            lifecycle.swap(staged)
        holder.close()
        assert lifecycle.swap(staged) is not None and live_ids(settings, "model-a", 4) == {"p1"}
    finally:
        lifecycle.close()
