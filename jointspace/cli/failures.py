"""How a failed `jointspace` command reports: text with a caret on stderr, or, when the command
was given `--json`, one JSON object on stdout (`error`, `message`, `position`, `suggestions`);
the exit code is the same either way."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click
import typer

from jointspace.errors import QueryError, ServiceUnavailableError, error_kind

# Typer 0.29 parses with its own copy of click, whose exceptions derive from typer.TyperException;
# older typers raise click's own.
USAGE_ERRORS = (typer.TyperException, click.ClickException)

ERROR_EXIT = 2  # a problem the person must fix, as click's usage errors


def wants_json(args: Sequence[str]) -> bool:
    """True when `--json` is among the options (not after `--`, where it would be an argument)."""
    options = list(args[: list(args).index("--")]) if "--" in args else list(args)
    return "--json" in options


def error_object(exc: BaseException) -> dict[str, Any]:
    """The machine-readable form of an error: `error`, `message`, `position`, `suggestions`
    (and `expression` for a query error)."""
    if isinstance(exc, QueryError):
        return {**exc.to_json(), "expression": exc.expression}
    if isinstance(exc, USAGE_ERRORS):
        return {"error": "usage", "message": exc.format_message(), "position": None, "suggestions": []}
    kind, _ = error_kind(exc)  # the kinds the API answers with
    found: dict[str, Any] = {"error": kind, "message": str(exc), "position": None, "suggestions": []}
    done = exc.done if isinstance(exc, ServiceUnavailableError) else None
    if hasattr(done, "to_json"):  # what an interrupted ingest run had done (its summary so far)
        found["done"] = done.to_json()
    return found


def report(exc: BaseException, as_json: bool) -> int:
    """Prints the error the way asked and returns the exit code."""
    code = getattr(exc, "exit_code", ERROR_EXIT) if isinstance(exc, USAGE_ERRORS) else ERROR_EXIT
    if as_json:
        sys.stdout.write(json.dumps(error_object(exc), ensure_ascii=False) + "\n")
    elif isinstance(exc, USAGE_ERRORS):
        try:
            from typer import rich_utils

            rich_utils.rich_format_error(exc)  # type: ignore[arg-type]  # annotated for typer's click copy only
        except ImportError:  # typer without rich: click's plain text
            exc.show()  # type: ignore[union-attr]  # old typers raise click's exceptions, which have it
    else:
        message = exc.pretty() if isinstance(exc, QueryError) else str(exc)
        print(f"error: {message}", file=sys.stderr)
    return code
