"""What one process needs to run batches: the model bundle, the backend, the dead letters, loaded once.

The worker's own assembly (a Celery worker child, the in-process distributor, reindex); the
application's parts are built by the composition root, `jointspace.app`.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from jointspace.workers.batch_indexing import BatchRunner
from jointspace.workers.dead_letters import DeadLetterStore, open_dead_letters

from jointspace.images import DecodeLimits
from jointspace.protocols import ModelBundle, SearchBackend
from jointspace.settings import Settings


def decode_limits(settings: Settings) -> DecodeLimits:
    return DecodeLimits.from_settings(settings)


@dataclass
class WorkerContext:
    bundle: ModelBundle
    backend: SearchBackend
    dead_letters: DeadLetterStore
    runner: BatchRunner
    executor: ThreadPoolExecutor
    alerts: Any = None  # jointspace.alerts.checker.AlertChecker, when this context checks saved searches
    kept: Any = None  # jointspace.backends.kept_features.KeptFeatureStore, when features are kept
    # What open_context opened itself (the backend, the dead letters): closed with the context.
    # Parts handed in stay open: whoever opened them closes them.
    owned: list[Any] = field(default_factory=list)

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        if self.kept is not None:
            self.kept.close()
        if self.alerts is not None:
            self.alerts.close()
        for part in reversed(self.owned):
            part.close()


def open_context(
    settings: Settings,
    bundle: ModelBundle | None = None,
    backend: SearchBackend | None = None,
    alerts: bool = True,
    dead_letters: DeadLetterStore | None = None,
) -> WorkerContext:
    """Loads the model (slow: seconds) and connects to the backend and the dead-letter store, unless
    given them. With `alerts`, every batch written is checked against the saved searches (reindex
    turns it off: re-embedding old posts is not news)."""
    from PIL import Image

    # PIL's own guard stays for images opened outside `images.decode` (which checks each settings'
    # `image_max_pixels` itself), raised only when a limit is above it: lowering this process-wide
    # value would refuse pictures that another settings object in the process (an API, a test) allows.
    if Image.MAX_IMAGE_PIXELS is not None and settings.image_max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = settings.image_max_pixels
    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    owned: list[Any] = []
    if bundle is None:
        from jointspace.encoders.bundle import open_model_bundle

        bundle = open_model_bundle(settings)
    if backend is None:
        from jointspace.backends import open_backend

        backend = open_backend(settings, bundle.name, bundle.dim)
        owned.append(backend)
    if dead_letters is None:
        dead_letters = open_dead_letters(settings)
        owned.append(dead_letters)
    executor = ThreadPoolExecutor(max_workers=settings.decode_threads, thread_name_prefix="decode")
    checker = None
    if alerts:
        from jointspace.alerts import open_alert_checker

        checker = open_alert_checker(settings, bundle, backend)
    kept = open_feature_keeper(settings, bundle)
    from jointspace.backends.takedown_register import open_takedowns

    takedowns = open_takedowns(settings)
    owned.append(takedowns)
    runner = BatchRunner(
        bundle.image,
        bundle.name,
        backend,
        dead_letters,
        decode_limits(settings),
        executor,
        checker,
        kept,
        embed_chunk=settings.embed_chunk,
        takedowns=takedowns,
    )
    return WorkerContext(bundle, backend, dead_letters, runner, executor, checker, kept, owned)


def open_feature_keeper(settings: Settings, bundle: ModelBundle) -> Any:
    """The kept-features store of the bundle's backbone (backends/kept_features.py), or None when
    keeping is off or the image encoder does not split into backbone and head (open-clip)."""
    from jointspace.backends.kept_features import open_kept_features

    from jointspace.protocols import FeatureImageEncoder

    image = bundle.image
    if not isinstance(image, FeatureImageEncoder):
        return None
    return open_kept_features(settings.home, image.backbone_spec, image.feature_dim, settings.kept_features_max)


_process_context: WorkerContext | None = None
_process_lock = threading.Lock()


def process_context(settings: Settings) -> WorkerContext:
    """One context per process, made on first use (a Celery worker child loads its model once)."""
    global _process_context
    with _process_lock:
        if _process_context is None:
            _process_context = open_context(settings)
        return _process_context
