"""Where documents live and are searched: Elasticsearch when `JOINTSPACE_ES_URL` is set, else the embedded store.

Both implement `jointspace.protocols.SearchBackend` and pass the same behaviour suite
(tests/backends/test_backend_behaviour.py).
"""

from __future__ import annotations

from pathlib import Path

from jointspace.errors import ConfigurationError
from jointspace.protocols import SearchBackend
from jointspace.settings import Settings


def open_backend(settings: Settings, model: str, dim: int, read_only: bool = False) -> SearchBackend:
    """The configured backend for vectors of `model` (`dim` dimensions).

    Raises ModelMismatchError when the index was built by another bundle, BackendUnavailableError
    when Elasticsearch cannot be reached. A missing index is created, unless `read_only`, where
    ConfigurationError says how to build one.
    """
    if settings.es_url:
        # Imported here so that the embedded path never loads the Elasticsearch client.
        from jointspace.backends.elasticsearch import ElasticsearchBackend

        return ElasticsearchBackend.open(settings, model, dim, read_only=read_only)
    from jointspace.backends.embedded import EmbeddedBackend

    if read_only and not EmbeddedBackend.exists(settings.embedded_dir):
        raise ConfigurationError(
            f"no embedded index in {settings.embedded_dir}: ingest posts first "
            f"(`jointspace ingest FILE`), or set JOINTSPACE_ES_URL to search Elasticsearch"
        )
    return embedded_store(settings, settings.embedded_dir, model, dim)


def embedded_store(settings: Settings, folder: Path, model: str, dim: int) -> SearchBackend:
    """The embedded store in `folder` (the live one, or a staged or retired one) with the settings' ANN options."""
    from jointspace.backends.ann_index import AnnParams
    from jointspace.backends.embedded import EmbeddedBackend

    return EmbeddedBackend(
        folder,
        model,
        dim,
        ann_min_rows=settings.embedded_ann_min_rows,
        ann=AnnParams(
            m=settings.embedded_ann_m,
            ef_construction=settings.embedded_ann_ef_construction,
            ef_search=settings.embedded_ann_ef_search,
            filter_walk_factor=settings.embedded_ann_filter_walk_factor,
        ),
    )


def recorded_model(settings: Settings) -> tuple[str, int] | None:
    """(bundle name, dims) of the configured index, read from the index itself (no model is
    loaded); None when there is no index yet."""
    if settings.es_url:
        from jointspace.es_mappings.client import connect
        from jointspace.es_mappings.manager import IndexManager

        client = connect(settings)
        try:
            manager = IndexManager(client, settings)
            index = manager.current()
            if index is None:
                return None
            meta = manager.meta(index)
            return str(meta["model"]), int(meta["dim"])
        finally:
            client.close()
    from jointspace.backends.embedded import EmbeddedBackend

    return EmbeddedBackend.recorded_model(settings.embedded_dir)


def open_existing_backend(settings: Settings) -> SearchBackend:
    """The configured index opened with the bundle it records, without loading any model (for
    commands that manage the index rather than embed). ConfigurationError when there is none."""
    recorded = recorded_model(settings)
    if recorded is None:
        where = (
            f"behind alias {settings.es_index_alias!r} at {settings.es_url}"
            if settings.es_url
            else f"in {settings.embedded_dir}"
        )
        raise ConfigurationError(f"no index {where}: ingest posts first (`jointspace ingest FILE`)")
    return open_backend(settings, *recorded, read_only=True)


__all__ = ["open_backend", "open_existing_backend", "recorded_model"]
