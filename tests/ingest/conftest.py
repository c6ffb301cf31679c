from __future__ import annotations

from pathlib import Path

import pytest

from jointspace.settings import Settings
from tests.workers.corpus import in_process_settings
from tests.workers.histogram_bundle import FACTORY

BUNDLE_FACTORY = FACTORY


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Broker-less, embedded backend under a fresh home, the histogram bundle, small batches."""
    return in_process_settings(tmp_path / "home", es_url=None)
