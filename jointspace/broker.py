"""The Celery broker (Redis) out of reach, said one way everywhere: BrokerUnavailableError naming
the URL and what to do, as es_mappings/client.py says it for Elasticsearch.

redis-py, kombu and Celery's result backend each fail in their own words when Redis is down
(`ConnectionError: Error 111 ...`, `OperationalError`, `RuntimeError: Retry limit exceeded ...`);
`is_broker_down` recognises them, `broker_unavailable` turns one into the error the CLI prints as
one line (exit 2) and the API answers as a 503 `broker_unavailable`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jointspace.errors import BrokerUnavailableError

START_HINT = "start it (`jointspace redis start`) or point JOINTSPACE_BROKER_URL at a running Redis"


def shown_url(url: str) -> str:
    """The URL without its password (it goes to terminals, logs and HTTP answers)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:  # not a URL: say nothing of it
        return "(the configured URL)"


def broker_down_types() -> tuple[type[Exception], ...]:
    import redis.exceptions
    from kombu.exceptions import OperationalError

    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OperationalError)


def _down_cause(exc: BaseException) -> BaseException | None:
    """`exc`, or the error it was raised from, that is Redis not answering; None if none is."""
    down = broker_down_types()
    seen: BaseException | None = exc
    for _ in range(5):  # the chain is short: a wrapper or two around the socket error
        if seen is None or isinstance(seen, down):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def is_broker_down(exc: BaseException) -> bool:
    """True when `exc`, or an error it was raised from, is Redis not answering."""
    return _down_cause(exc) is not None


def broker_unavailable(url: str | None, exc: BaseException) -> BrokerUnavailableError:
    """The one message: where, why (the first line of the underlying error) and what to do."""
    cause = _down_cause(exc) or exc
    detail = (str(cause).strip().splitlines() or [""])[0]
    where = f"the broker (Redis) at {shown_url(url)}" if url else "Redis"
    return BrokerUnavailableError(f"{where} cannot be reached ({type(cause).__name__}: {detail}); {START_HINT}")


@contextmanager
def broker_errors(url: str | None) -> Iterator[None]:
    """Turns Redis being down, inside the block, into BrokerUnavailableError."""
    try:
        yield
    except BrokerUnavailableError:
        raise
    except Exception as exc:
        if is_broker_down(exc):
            raise broker_unavailable(url, exc) from exc
        raise


def open_broker_client(url: str, timeout_s: float = 2.0) -> Any:
    """A redis.Redis on the broker that gives up after `timeout_s` and answers text (str)."""
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, decode_responses=True)


def check_broker(url: str, timeout_s: float = 2.0, client: Any = None) -> None:
    """Raises BrokerUnavailableError unless Redis at `url` answers a PING within `timeout_s`.
    `client`: ask on this one (left open), so that a caller reading on goes on on the same connection."""
    with broker_errors(url):
        asked = client if client is not None else open_broker_client(url, timeout_s)
        try:
            asked.ping()
        finally:
            if client is None:
                asked.close()
