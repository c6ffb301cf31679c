"""An Elasticsearch client that fails fast and clearly: unreachable → BackendUnavailableError naming the URL."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from jointspace.errors import BackendUnavailableError
from jointspace.settings import Settings

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch


class _OneLineFailures(logging.Filter):
    """The transport logs every retried request with the whole urllib3 traceback: an outage of three
    minutes put 1,020 of them (4 MB) into a worker's log, burying the one line per batch that says
    what happened. The failure stays, as one line; nothing is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()}: {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
            record.args = None
            record.exc_info = record.exc_text = None
        return True


def quiet_transport_logs() -> None:
    """Installs the one-line filter on the transport's loggers (once per process)."""
    for name in ("elastic_transport.transport", "elastic_transport.node_pool", "elastic_transport.node"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _OneLineFailures) for f in logger.filters):
            logger.addFilter(_OneLineFailures())


@contextmanager
def unavailable_as_error(url: str) -> Iterator[None]:
    """Turns the transport's connection failures and timeouts into BackendUnavailableError."""
    from elastic_transport import ConnectionError, ConnectionTimeout

    try:
        yield
    except (ConnectionError, ConnectionTimeout) as exc:
        raise BackendUnavailableError(
            f"Elasticsearch at {url} cannot be reached ({type(exc).__name__}: {exc}); start it "
            f"(`jointspace es start`) or point JOINTSPACE_ES_URL at a running node"
        ) from exc


def connect(settings: Settings, url: str | None = None) -> Elasticsearch:
    """A client for `url` (default Settings.es_url), checked live within es_connect_timeout_s.

    `url` may list several nodes of one cluster, comma-separated: the client spreads requests over
    them and retries a request on another node when one is down, so losing a node is not an outage.

    Liveness uses cluster health: the local node has no `rest-root` module, so `GET /` (ping/info)
    answers 405 there.
    """
    from elasticsearch import Elasticsearch, OrjsonSerializer

    url = url or settings.es_url
    if not url:
        raise BackendUnavailableError("no Elasticsearch URL: set JOINTSPACE_ES_URL")
    quiet_transport_logs()
    # orjson writes numpy float32 vectors directly, in their shortest float32 form: bulk bodies are
    # ~40% smaller and serialise ~10× faster than through the stdlib json encoder.
    hosts = [host.strip() for host in url.split(",") if host.strip()]
    client = Elasticsearch(
        hosts, request_timeout=settings.es_request_timeout_s, retry_on_timeout=True, serializer=OrjsonSerializer()
    )
    from elasticsearch import ApiError, UnsupportedProductError

    with unavailable_as_error(url):
        # One attempt per listed node, each bounded by the connect timeout: the promise callers rely on.
        try:
            client.options(request_timeout=settings.es_connect_timeout_s, max_retries=len(hosts) - 1).cluster.health()
        except (ApiError, UnsupportedProductError) as exc:
            client.close()
            raise BackendUnavailableError(
                f"{url} answers, but not as a healthy Elasticsearch node "
                f"({type(exc).__name__}: {exc}); check JOINTSPACE_ES_URL"
            ) from exc
    return client
