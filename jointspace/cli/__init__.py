"""The `jointspace` command. Each command group lives in its own module and registers itself here.

Command modules import heavy libraries (torch, elasticsearch) inside the commands, so that
`jointspace --help` and `jointspace es status` start fast.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

import typer

from jointspace.cli import (
    alerts,
    backup,
    data,
    es,
    ingest,
    media,
    model,
    optimize,
    search,
    serve,
    status,
    takedown,
    train,
)
from jointspace.cli.failures import USAGE_ERRORS, report, wants_json
from jointspace.errors import JointspaceError

app = typer.Typer(
    help="Semantic image search over social-media posts, with word and image arithmetic.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(wanted: bool) -> None:
    if wanted:
        try:
            print(f"jointspace {version('jointspace')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            print("jointspace (not installed)")
        raise typer.Exit()


@app.callback()
def _root(
    version_: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Semantic image search over social-media posts, with word and image arithmetic."""


for module in (es, data, train, ingest, takedown, optimize, search, serve, media, backup, alerts, model, status):
    module.register(app)


def _reflow(text: str) -> str:
    """Docstrings are wrapped at the source's width and rich keeps their line breaks, so at another
    terminal width help broke mid-sentence. Each paragraph of prose becomes one line (rich wraps it
    to the terminal); a paragraph with indented or listed lines is left as written."""
    paragraphs = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        lines = paragraph.splitlines()
        if not any(line[:1].isspace() or line.lstrip().startswith(("-", "*", "•")) for line in lines[1:]):
            paragraph = " ".join(line.strip() for line in lines)
        paragraphs.append(paragraph)
    return "\n\n".join(paragraphs)


def _flags_without_types(command: Any) -> None:
    """Typer labels every option with its type, flags too (`--json <bool>`), which reads as if the
    flag took a value; an empty metavar shows flags as flags. Help texts are reflowed (`_reflow`)."""
    if command.help:
        command.help = _reflow(command.help)
    for param in command.params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    make_help_option = command.get_help_option

    def help_option(ctx: Any) -> Any:  # made lazily by click, per command: blanked as it is made
        option = make_help_option(ctx)
        if option is not None and option.metavar is None:
            option.metavar = ""
        return option

    command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        _flags_without_types(sub)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app)
    _flags_without_types(command)
    try:
        # standalone_mode=False: usage errors come back here, to be reported as JSON when asked.
        outcome = command.main(args=args, prog_name="jointspace", standalone_mode=False)
    except (JointspaceError, *USAGE_ERRORS) as exc:
        sys.exit(report(exc, wants_json(args)))
    except typer.Abort:  # before the catch-all below: an Abort is an Exception too
        print("Aborted!", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        # Redis down under a command that reads it (dead letters, alerts, a stream): reported as
        # Elasticsearch down is, in one line with what to do, never as a traceback.
        from jointspace.broker import broker_unavailable, is_broker_down

        if not is_broker_down(exc):
            raise
        from jointspace.app import settings_from_environment

        sys.exit(report(broker_unavailable(settings_from_environment().broker_url, exc), wants_json(args)))
    # Without standalone mode click returns the code of a typer.Exit instead of exiting.
    sys.exit(outcome if isinstance(outcome, int) else 0)
