"""Shared, real data for the dataset tests: one small tuxpaint corpus built from the Debian package."""

from __future__ import annotations

from pathlib import Path

import pytest
from jointspace.datasets.fixtures import build_small_corpus

from jointspace.settings import Settings


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`all.jsonl` of 24 prepared tuxpaint stamps (the package is fetched once and cached)."""
    return build_small_corpus(tmp_path_factory.mktemp("corpus"), n=24, sources=("tuxpaint",), settings=Settings())
