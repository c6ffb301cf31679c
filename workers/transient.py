"""Which errors are worth retrying a batch for: the policy the Celery task declares and the
in-process distributor follows."""

from __future__ import annotations

from jointspace.errors import BackendUnavailableError


def transient_errors() -> tuple[type[BaseException], ...]:
    """Errors worth retrying the batch for: the backend, the broker or the network is away for a while."""
    import elastic_transport
    import redis

    return (
        BackendUnavailableError,
        ConnectionError,
        TimeoutError,
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        elastic_transport.ConnectionError,
        elastic_transport.ConnectionTimeout,
    )
