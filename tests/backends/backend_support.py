"""Helpers shared by the backend tests and their conftest (a plain module, so both import the same objects)."""

from __future__ import annotations

import uuid
from pathlib import Path

from jointspace.backends.elasticsearch import ElasticsearchBackend
from jointspace.es_mappings.manager import IndexManager

from jointspace.settings import Settings

# Recall figures measured by test_es_recall.py, printed by the conftest's terminal summary.
RECALL_FIGURES: list[dict[str, object]] = []


def es_settings(es_url: str, tmp_path: Path, **overrides: object) -> Settings:
    """Settings for a fresh alias (so a fresh index) on the session's node."""
    return Settings(home=tmp_path, es_url=es_url, es_index_alias=f"test-{uuid.uuid4().hex[:12]}", **overrides)


def drop_alias_indices(backend: ElasticsearchBackend) -> None:
    manager = IndexManager(backend.client, backend.settings, backend.alias)
    for info in manager.indices():
        backend.client.indices.delete(index=info.name, ignore_unavailable=True)
    backend.client.indices.delete(index=f"{backend.alias}.takedowns", ignore_unavailable=True)  # the register
    backend.close()
