"""The long-lived parts the routes use, built once when the app starts (never at import)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jointspace.api.media import MediaStore

from jointspace.app import Ingestion
from jointspace.protocols import ModelBundle, SearchBackend, TakedownRegister
from jointspace.settings import Settings


@dataclass
class ApiContainer:
    """Everything a request may need. `search` is the query engineer's SearchService; `ingestion`
    hands validated posts to the workers (or indexes them in-process without a broker)."""

    settings: Settings
    backend: SearchBackend
    bundle: ModelBundle
    search: Any
    media: MediaStore
    ingestion: Ingestion
    takedowns: TakedownRegister
    owned: list[Any] = field(default_factory=list)
    alerts: Any = None  # jointspace.alerts.service.AlertService: saved searches and their matches
    # The nearest-word vocabulary, prepared in the background (started by `warm_up`).
    nearest: Any = None

    @property
    def in_process(self) -> bool:
        """True: POST /posts indexes in this process and waits for the outcome; false: it enqueues
        to the Celery workers and answers once the posts are queued."""
        return self.ingestion.in_process

    @property
    def submitter(self) -> Any:
        """The ingestion's distributor (`submit_batch`)."""
        return self.ingestion.distributor

    def close(self) -> None:
        for part in reversed(self.owned):
            close = getattr(part, "close", None)
            if close is not None:
                close()


def build_container(settings: Settings, bundle: ModelBundle | None = None) -> ApiContainer:
    """Loads the model bundle (unless given), opens the backend and wires the search service and
    the ingestion, all through the composition root (`jointspace.app`). Blocks for the model load
    (seconds); raises ConfigurationError / BackendUnavailableError / ModelMismatchError with what to do."""
    from jointspace.query.vocabulary import NearestWords

    from jointspace import app
    from jointspace.alerts import open_alert_store
    from jointspace.alerts.service import AlertService

    bundle = bundle or app.open_bundle(settings)
    backend = app.open_search_backend(settings, bundle)
    owned: list[Any] = [backend]
    try:
        nearest = NearestWords(bundle.text)
        search = app.open_search_service(settings, bundle, backend, nearest=nearest)
        alert_store = open_alert_store(settings)
        owned.append(alert_store)
        # The in-process pipeline shares this process's model and backend rather than loading its own.
        ingestion = app.open_ingestion(settings, bundle=bundle, backend=backend)
        owned.append(ingestion)
        takedowns = app.open_takedown_register(settings)
        owned.append(takedowns)
    except BaseException:
        for part in reversed(owned):
            part.close()
        raise
    return ApiContainer(
        settings=settings,
        backend=backend,
        bundle=bundle,
        search=search,
        media=MediaStore(settings, getattr(backend, "media_roots", None)),
        ingestion=ingestion,
        takedowns=takedowns,
        owned=owned,
        nearest=nearest,
        alerts=AlertService(alert_store, search, bundle.name, settings),
    )


def warm_up(container: ApiContainer) -> None:
    """One-time work before the first request, once: load both encoders' networks (they load on
    first use; seconds) now, at start-up, and start preparing the nearest-word vocabulary in the
    background (a minute or more on a cold home), so that no request ever waits for it."""
    from PIL import Image

    text = container.bundle.text
    text.embed_words([text.vocabulary()[0]])
    container.bundle.image.embed_images([Image.new("RGB", (224, 224), (128, 128, 128))])
    if container.nearest is not None:
        container.nearest.start()
