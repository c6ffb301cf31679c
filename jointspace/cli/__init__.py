"""The `jointspace` command. Each command group lives in its own module and registers itself here.

Command modules import heavy libraries (torch, elasticsearch) inside the commands, so that
`jointspace --help` and `jointspace es status` start fast.
"""
from __future__ import annotations

import sys

import typer

from jointspace.errors import JointspaceError

app = typer.Typer(help="Semantic image search over social-media posts, with word and image arithmetic.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)

from jointspace.cli import data, es, ingest, search, serve, train  # noqa: E402

for module in (es, data, train, ingest, search, serve):
    module.register(app)


def main() -> None:
    try:
        app()
    except JointspaceError as exc:
        message = exc.pretty() if hasattr(exc, "pretty") else str(exc)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
