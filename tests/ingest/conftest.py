from __future__ import annotations

from pathlib import Path

import pytest

from jointspace.settings import Settings
from tests.workers.corpus import TEST_MAX_BYTES, TEST_MAX_PIXELS
from tests.workers.histogram_bundle import FACTORY

BUNDLE_FACTORY = FACTORY


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Broker-less, embedded backend under a fresh home, the histogram bundle, small batches."""
    return Settings(
        home=tmp_path / "home",
        es_url=None,
        broker_url=None,
        bundle_factory=BUNDLE_FACTORY,
        batch_size=4,
        image_max_pixels=TEST_MAX_PIXELS,
        image_max_bytes=TEST_MAX_BYTES,
        decode_threads=2,
    )
