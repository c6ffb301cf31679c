"""Errors a person can act on. The CLI prints them to stderr and exits non-zero; the API maps them to 4xx/5xx."""

from __future__ import annotations


class JointspaceError(Exception):
    """Base of every error the project raises on purpose."""


class ConfigurationError(JointspaceError):
    """A setting, a model bundle or an installed tool is missing or wrong."""


class ModelMismatchError(JointspaceError):
    """An index was built by another model bundle than the one asked to query it."""


class ServiceUnavailableError(JointspaceError):
    """A service the command needs cannot be reached (names its URL and how to start it).

    `done`: what the interrupted work had finished before the service went away, when there was
    some (an ingest run's summary so far), for the caller to report."""

    def __init__(self, message: str, done: object | None = None) -> None:
        super().__init__(message)
        self.done = done


class BackendUnavailableError(ServiceUnavailableError):
    """The search backend cannot be reached (names the URL)."""


class BrokerUnavailableError(ServiceUnavailableError):
    """The Celery broker (Redis) cannot be reached (names the URL): `jointspace/broker.py` says it."""


class NotFoundError(JointspaceError):
    """An id that names nothing (a saved search, ...): the API's 404, `not_found` from both doors."""


class DimensionError(JointspaceError, ValueError):
    """A vector of the wrong size."""


class QueryError(JointspaceError, ValueError):
    """A query that cannot run. `position` is the 0-based character offset in the expression, when known."""

    def __init__(
        self,
        message: str,
        position: int | None = None,
        expression: str | None = None,
        suggestions: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.expression = expression
        self.suggestions = suggestions or []

    def pretty(self) -> str:
        """The message, and under the expression a caret at the position."""
        if self.expression is None or self.position is None:
            return self.message
        return f"{self.message}\n  {self.expression}\n  {' ' * self.position}^"

    def to_json(self) -> dict[str, object]:
        return {"error": "query", "message": self.message, "position": self.position, "suggestions": self.suggestions}


# What each error is called in JSON answers (the API's and the CLI's `--json`) and the HTTP status
# the API answers it with: one table, so a script reads one vocabulary from both doors.
ERROR_KINDS: tuple[tuple[type[JointspaceError], str, int], ...] = (
    (QueryError, "query", 400),
    (DimensionError, "dimension", 400),
    (NotFoundError, "not_found", 404),
    (ModelMismatchError, "model_mismatch", 409),
    (BackendUnavailableError, "backend_unavailable", 503),
    (BrokerUnavailableError, "broker_unavailable", 503),
    (ConfigurationError, "configuration", 500),
)


def error_kind(exc: BaseException) -> tuple[str, int]:
    """The error's kind and HTTP status from ERROR_KINDS; any other error is a bad request."""
    return next(((kind, status) for cls, kind, status in ERROR_KINDS if isinstance(exc, cls)), ("request", 400))
