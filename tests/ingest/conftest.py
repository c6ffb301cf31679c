from __future__ import annotations

import sys
from pathlib import Path

import pytest

from jointspace.settings import Settings

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # the histogram bundle is loaded by name, as a worker would
    sys.path.insert(0, str(TESTS))

from workers.corpus import TEST_MAX_BYTES, TEST_MAX_PIXELS  # noqa: E402

BUNDLE_FACTORY = "workers.histogram_bundle:make_bundle"


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
