"""The composition root: the one place that turns `Settings` into the application's parts.

Entry points (the CLI commands, the API's start-up, the Celery worker's start-up, the demo, the
benchmarks) read the settings once, with `settings_from_environment`, and build what they need
here. Everything below is given its settings and its parts and never reads the environment itself
(`tests/core/test_composition_root.py` fails on any other caller of `get_settings()`).

    Settings ─┬─ open_bundle ─────────── the model bundle (resolved in encoders/bundle.py)
              ├─ open_search_backend ─── backends.open_backend, for that bundle
              ├─ open_search_service ─── query.service.SearchService over both
              ├─ open_dead_letter_store ─ workers/dead_letters.py
              └─ open_ingestion ──────── dead letters, backend and the distributor seam
                                         (workers/distributor.py decides: in-process or Celery),
                                         run as `IngestRun` over a source
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jointspace.protocols import ModelBundle, SearchBackend, TakedownRegister
from jointspace.settings import Settings, get_settings

if TYPE_CHECKING:
    from jointspace.ingest.run import IngestSummary
    from jointspace.ingest.sources.base import Source
    from jointspace.query.service import SearchService
    from jointspace.query.vocabulary import NearestWords
    from jointspace.workers.dead_letters import DeadLetterStore
    from jointspace.workers.distributor import Distributor


def settings_from_environment() -> Settings:
    """The process's settings from `JOINTSPACE_*` (read once). For entry points only."""
    return get_settings()


def open_bundle(settings: Settings) -> ModelBundle:
    """`JOINTSPACE_BUNDLE_FACTORY` when set, else the bundle `JOINTSPACE_MODEL` (or the default) names.
    Reads the manifest now; the networks load on first use."""
    from jointspace.encoders.bundle import open_model_bundle

    return open_model_bundle(settings)


def open_search_backend(settings: Settings, bundle: ModelBundle, read_only: bool = False) -> SearchBackend:
    """The configured backend (Elasticsearch or embedded) for the bundle's vectors."""
    from jointspace.backends import open_backend

    return open_backend(settings, bundle.name, bundle.dim, read_only=read_only)


def open_search_service(
    settings: Settings, bundle: ModelBundle, backend: SearchBackend, nearest: NearestWords | None = None
) -> SearchService:
    from jointspace.query.service import SearchService

    return SearchService(backend, bundle.text, settings, nearest=nearest)


def open_dead_letter_store(settings: Settings, client: Any = None) -> DeadLetterStore:
    """`client`: with a broker, a redis.Redis answering text to read them on (left open)."""
    from jointspace.workers.dead_letters import open_dead_letters

    return open_dead_letters(settings, client)


def open_takedown_register(settings: Settings) -> TakedownRegister:
    """The posts taken down, which no batch writes (beside the configured backend's index)."""
    from jointspace.backends.takedown_register import open_takedowns

    return open_takedowns(settings)


@dataclass
class Ingestion:
    """What ingesting takes, opened together: the distributor (in-process or Celery), the dead
    letters and, when there is one here, the backend. `run` drives one `IngestRun` over a source;
    `close` closes what `open_ingestion` opened (never what it was given)."""

    settings: Settings
    distributor: Distributor
    dead_letters: DeadLetterStore
    backend: SearchBackend | None
    owned: list[Any] = field(default_factory=list)

    @property
    def in_process(self) -> bool:
        """True: a run settles every post here (indexed or dead-lettered); False: Celery workers do."""
        return self.distributor.in_process

    def run(
        self, source: Source, *, wait: bool = True, confirm_searchable: bool = True, progress: bool = True
    ) -> IngestSummary:
        """Blocks until the source is exhausted and (with `wait`) every batch is settled; with
        `confirm_searchable` and a backend, until every indexed post can be fetched."""
        from jointspace.ingest.run import IngestRun

        summary = IngestRun(
            source,
            self.distributor,
            self.dead_letters,
            batch_size=self.settings.batch_size,
            wait=wait,
            backend=self.backend if confirm_searchable else None,
            # In-process the distributor holds two batches at most; with Celery this bounds the
            # tickets followed, above the queue's own bound so that backpressure comes from the queue.
            max_in_flight=max(2, self.settings.queue_max_batches * 2),
            timeout_s=self.settings.ingest_wait_timeout_s,
            progress=progress,
        ).run()
        if wait:
            summary.merge = merge_after_bulk(self.settings, self.backend, summary.indexed)
        return summary

    def close(self) -> None:
        """Waits for the batches in hand, then closes what was opened here."""
        self.distributor.close()
        for part in reversed(self.owned):
            part.close()


def merge_after_bulk(settings: Settings, backend: SearchBackend | None, indexed: int) -> dict[str, Any] | None:
    """After `indexed` posts went into an Elasticsearch index in one run: when that is at least
    `es_merge_after_posts`, starts merging the index into one segment on the node (not waited for:
    the posts are searchable already, searches get faster when the merge ends) and says so. None
    when no merge was started (the embedded store has one graph and nothing to merge)."""
    from jointspace.backends.elasticsearch import ElasticsearchBackend

    threshold = settings.es_merge_after_posts
    if not isinstance(backend, ElasticsearchBackend) or threshold <= 0 or indexed < threshold:
        return None
    report = backend.merge_segments(max_segments=1, wait=False)
    if report.task is None:  # one segment already
        return None
    return {"index": report.index, "segments": report.before, "task": report.task}


def open_ingestion(
    settings: Settings,
    *,
    bundle: ModelBundle | None = None,
    backend: SearchBackend | None = None,
    dead_letters: DeadLetterStore | None = None,
    with_backend: bool = True,
) -> Ingestion:
    """The parts an ingest run needs. Parts given are shared (the API passes the ones it searches
    with) and left open by `Ingestion.close`. `with_backend=False`: the caller does not need the
    backend itself (a Celery producer that does not wait); in-process the pipeline opens it anyway.
    Blocks for the model load in-process (seconds)."""
    from jointspace.workers.distributor import open_distributor, runs_in_process

    owned: list[Any] = []
    try:
        if dead_letters is None:
            dead_letters = open_dead_letter_store(settings)
            owned.append(dead_letters)
        if backend is None and (with_backend or runs_in_process(settings)):
            bundle = bundle or open_bundle(settings)
            backend = open_search_backend(settings, bundle)
            owned.append(backend)
        distributor = open_distributor(settings, bundle=bundle, backend=backend, dead_letters=dead_letters)
    except BaseException:
        for part in reversed(owned):
            part.close()
        raise
    return Ingestion(settings, distributor, dead_letters, backend, owned)


__all__ = [
    "Ingestion",
    "open_bundle",
    "open_dead_letter_store",
    "merge_after_bulk",
    "open_ingestion",
    "open_search_backend",
    "open_search_service",
    "settings_from_environment",
]


def broker_health(settings: Settings, client: Any = None) -> tuple[bool, str]:
    """(reachable, detail) of the Celery broker; no broker is healthy (posts go in-process).
    `client`: ask on this redis.Redis (left open) rather than on a connection of its own."""
    url = settings.broker_url
    if not url:
        return True, "none: posts are indexed in-process"
    from jointspace.broker import check_broker
    from jointspace.errors import BrokerUnavailableError

    try:
        check_broker(url, client=client)
    except BrokerUnavailableError as exc:  # where, why and how to start it, as the index's line says
        return False, str(exc)
    except Exception as exc:  # any other failure means "down" too; the detail says which
        return False, f"{type(exc).__name__}: {exc}"
    return True, "redis reachable"


def worker_health(settings: Settings, client: Any) -> dict[str, Any] | None:
    """Live workers of this home's queue and its waiting batches, read on `client` (a redis.Redis on
    the broker; None when it fails): a run waiting on a queue nobody takes from looked like a hang,
    and status said all was well. Workers of other queues on the same database do not count."""
    import redis

    from jointspace.workers.liveness import live_workers, queued_batches

    try:
        live, queued = live_workers(client, settings.celery_queue), queued_batches(client, settings.celery_queue)
    except redis.RedisError:
        return None
    return {"ok": bool(live or not queued), "live": live, "queued": queued}


def _index_contents(settings: Settings, built_by: str, loaded: str) -> dict[str, Any]:
    from jointspace.backends import open_existing_backend

    backend = open_existing_backend(settings)
    try:
        cities = backend.cities()
        found: dict[str, Any] = {"ok": True, "posts": backend.count(), "cities": len(cities), "model": built_by}
        found["top_cities"] = [{"city": c, "count": n} for c, n in cities[:5]]
    finally:
        backend.close()
    if built_by != loaded:  # search and ingest refuse it
        found |= {
            "ok": False,
            "detail": f"built by bundle {built_by}, not {loaded} (the one search and ingest load): set "
            f"JOINTSPACE_MODEL to {built_by}'s folder (`jointspace model list`), or `jointspace reindex "
            f"--bundle {loaded}`",
        }
    return found


def _dead_letter_count(settings: Settings, client: Any) -> int | None:
    try:
        letters = open_dead_letter_store(settings, client)
        try:
            return letters.count()
        finally:
            letters.close()
    except Exception:  # unreadable: shown as unknown
        return None


def home_status(settings: Settings) -> dict[str, Any]:
    """What `jointspace status` reports: the index (posts, cities, the model it was built by),
    the bundle search and ingest load, the dead letters and the broker, each with `ok`. Only the
    bundle's manifest is read: no network is loaded."""
    from jointspace.backends import recorded_model
    from jointspace.errors import JointspaceError

    bundle = open_bundle(settings)
    where = f"{settings.es_url} alias {settings.es_index_alias}" if settings.es_url else str(settings.embedded_dir)
    index: dict[str, Any] = {"kind": "elasticsearch" if settings.es_url else "embedded", "where": where}
    try:
        recorded = recorded_model(settings)
    except JointspaceError as exc:  # Elasticsearch down or refusing
        index |= {"ok": False, "detail": str(exc)}
    else:
        if recorded is None:
            index |= {"ok": True, "posts": 0, "detail": "no index yet: `jointspace ingest FILE` builds one"}
        else:
            index |= _index_contents(settings, recorded[0], bundle.name)
    # With a broker, one connection: its PING, then the dead letters and the workers kept there.
    from jointspace.broker import open_broker_client

    client = open_broker_client(settings.broker_url) if settings.broker_url else None
    try:
        broker_ok, broker_detail = broker_health(settings, client)
        dead = _dead_letter_count(settings, client) if broker_ok else None  # else the broker's line says why
        workers = worker_health(settings, client) if client is not None and broker_ok else None
    finally:
        if client is not None:
            client.close()
    return {
        "home": str(settings.home),
        "index": index,
        "model": {"name": bundle.name, "dim": bundle.dim},
        "dead_letters": dead,
        "broker": {"ok": broker_ok, "detail": broker_detail},
        "workers": workers,
        "ok": bool(index["ok"]) and broker_ok and (workers is None or workers["ok"]),
    }
