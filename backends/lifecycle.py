"""Index lifecycle, the backends' side of the contract (`jointspace.protocols.IndexLifecycle`):
staging a new index, swapping it in, dropping or rolling back to a retired one.

Elasticsearch: versioned indices behind the alias (`es_mappings/manager.py`); the swap is one atomic
alias update, so search keeps answering from the old index until then, and writers that use the
alias land in the new index right after: the catch-up runs after the swap.

Embedded: store folders beside `<home>/embedded`; the staging folder is `embedded.reindex`, the swap
is two renames and the retired store becomes `embedded.<model>.<time>`. Processes that hold the old
store open (`serve`, a running `ingest`) would keep writing into it, so staging and the swap are
refused while one does, and the catch-up runs before the swap.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from jointspace.backends.store_lock import refuse_if_in_use

from jointspace.errors import ConfigurationError
from jointspace.protocols import IndexLifecycle, SearchBackend
from jointspace.records import IndexRef
from jointspace.settings import Settings

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch


class ElasticsearchLifecycle:
    """`IndexLifecycle` over the alias `settings.es_index_alias`."""

    catch_up_after_swap = True

    def __init__(self, settings: Settings, client: Elasticsearch | None = None) -> None:
        from jointspace.es_mappings.client import connect
        from jointspace.es_mappings.manager import IndexManager

        self.settings = settings
        self.client = client or connect(settings)
        self.manager = IndexManager(self.client, settings)
        self.where = f"alias {self.manager.alias!r}"

    def _ref(self, index: str) -> IndexRef:
        meta = self.manager.meta(index)
        return IndexRef(index, str(meta.get("model")), int(meta.get("dim") or 0))

    def live(self) -> IndexRef | None:
        index = self.manager.current()
        return self._ref(index) if index is not None else None

    def open_index(self, ref: IndexRef) -> SearchBackend:
        from jointspace.backends.elasticsearch import ElasticsearchBackend

        quantized = str(self.manager.meta(ref.name).get("index_options", "")).startswith(("int8", "bbq"))
        # By index name, not alias: the backend addresses one exactly as the other, and after a swap
        # the alias names another index. Its own client: closing the backend leaves this one open.
        from jointspace.es_mappings.client import connect

        return ElasticsearchBackend(connect(self.settings), self.settings, ref.model, ref.dim, ref.name, quantized)

    def stage(self, model: str, dim: int) -> IndexRef:
        return IndexRef(self.manager.create(model, dim), model, dim)

    def swap(self, staged: IndexRef) -> IndexRef | None:
        """One atomic alias update; the index it leaves is marked `retired_at` in its `_meta`, so a
        staged index a dead reindex left behind is never taken for one to roll back to."""
        old = self.live()
        self.manager.point_alias(staged.name)
        if old is not None and old.name != staged.name:
            meta = {**self.manager.meta(old.name), "retired_at": datetime.now(UTC).isoformat()}
            self.client.indices.put_mapping(index=old.name, meta=meta)  # _meta is replaced whole
        return old

    def retired(self) -> list[IndexRef]:
        found = []
        for info in self.manager.indices():
            meta = self.manager.meta(info.name) if not info.aliased else {}
            if meta.get("retired_at"):
                found.append((str(meta["retired_at"]), IndexRef(info.name, str(info.model), int(info.dim or 0))))
        return [ref for _, ref in sorted(found, key=lambda r: r[0])]

    def drop(self, ref: IndexRef) -> None:
        self.manager.drop(ref.name)

    def close(self) -> None:
        self.client.close()


class EmbeddedLifecycle:
    """`IndexLifecycle` over the store folder `settings.embedded_dir`."""

    catch_up_after_swap = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = settings.embedded_dir
        self.where = f"the embedded store {self.folder}"

    def _ref(self, folder: Path) -> IndexRef | None:
        from jointspace.backends.embedded import EmbeddedBackend

        recorded = EmbeddedBackend.recorded_model(folder)
        return IndexRef(str(folder), recorded[0], recorded[1]) if recorded else None

    def live(self) -> IndexRef | None:
        return self._ref(self.folder)

    def open_index(self, ref: IndexRef) -> SearchBackend:
        from jointspace.backends import embedded_store

        return embedded_store(self.settings, Path(ref.name), ref.model, ref.dim)

    def stage(self, model: str, dim: int) -> IndexRef:
        # Before any work, and again at the swap: a writer swapped under would strand its posts.
        refuse_if_in_use(self.folder, "run this again")
        staging = self.folder.with_name(f"{self.folder.name}.reindex")
        shutil.rmtree(staging, ignore_errors=True)  # left by a run that died: its copy is incomplete
        return IndexRef(str(staging), model, dim)

    def swap(self, staged: IndexRef) -> IndexRef | None:
        """Two renames; the store that was live is kept as `embedded.<model>.<time>`. Close the
        backends opened on either folder first."""
        refuse_if_in_use(self.folder, "run this again")
        old = self.live()
        retired = None
        if old is not None:
            retired = self.folder.with_name(f"{self.folder.name}.{old.model}.{time.strftime('%Y%m%d-%H%M%S')}")
            if retired.exists():  # two swaps within a second
                retired = retired.with_name(f"{retired.name}-{time.monotonic_ns()}")
            self.folder.rename(retired)
        Path(staged.name).rename(self.folder)
        return IndexRef(str(retired), old.model, old.dim) if old is not None and retired is not None else None

    def retired(self) -> list[IndexRef]:
        """Stores retired by a swap or a restore, oldest first (by when they were moved aside)."""
        prefix = f"{self.folder.name}."
        found = [
            p
            for p in self.folder.parent.glob(f"{prefix}*")
            if p.is_dir() and not p.name.endswith((".reindex", ".restore"))
        ]
        refs = [(p.stat().st_ctime, self._ref(p)) for p in found]
        return [ref for _, ref in sorted((r for r in refs if r[1] is not None), key=lambda r: r[0])]  # type: ignore[misc]  # None refs filtered

    def drop(self, ref: IndexRef) -> None:
        if Path(ref.name).resolve() == self.folder.resolve():
            raise ConfigurationError(f"{ref.name} is the live store; swap another in before dropping it")
        shutil.rmtree(ref.name)

    def close(self) -> None:
        pass


def open_lifecycle(settings: Settings) -> IndexLifecycle:
    """The configured backend's lifecycle: Elasticsearch when `es_url` is set, else the embedded store."""
    if settings.es_url:
        return ElasticsearchLifecycle(settings)
    return EmbeddedLifecycle(settings)


def rollback(lifecycle: IndexLifecycle) -> tuple[IndexRef, IndexRef | None]:
    """Makes the newest retired index live again (the one it replaces is retired in turn);
    returns (now live, retired now). ConfigurationError when nothing was kept to roll back to."""
    retired = lifecycle.retired()
    if not retired:
        raise ConfigurationError(
            f"nothing to roll back to behind {lifecycle.where}: no retired index was kept "
            "(reindex keeps the old one unless --no-keep-old)"
        )
    target = retired[-1]
    old = lifecycle.swap(target)
    live = lifecycle.live()
    assert live is not None
    return live, old
