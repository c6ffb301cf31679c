"""`jointspace delete` and `jointspace takedowns`: posts out of the index, and kept out."""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack, closing
from typing import Annotated

import click
import typer

from jointspace.cli import terminal


def _ids(post_ids: list[str]) -> list[str]:
    ids = [line.strip() for line in sys.stdin if line.strip()] if post_ids == ["-"] else post_ids
    if not ids:
        raise click.UsageError("no post ids given (stdin was empty)")
    return ids


def delete(
    post_ids: Annotated[
        list[str], typer.Argument(help="Ids of the posts to take down; `-` reads them from stdin, one a line.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print what was removed as JSON on stdout.")] = False,
) -> None:
    """Take posts down: out of the index, with their kept image features, alert matches and dead letters.

    Searchable at once. The takedown is recorded, so a post still queued, sent again by a stream or
    in an older backup is not indexed again (`jointspace takedowns lift` allows it). Exits 1 when
    an id was not in the index (it is recorded all the same; the others are taken down)."""
    from jointspace.alerts import open_alert_store
    from jointspace.app import open_dead_letter_store, open_takedown_register
    from jointspace.backends import open_existing_backend, recorded_model
    from jointspace.ingest.takedown import take_down
    from jointspace.settings import get_settings

    ids = _ids(post_ids)
    settings = get_settings()
    # The index with the bundle it records, no model loaded: a takedown must work whichever bundle
    # is the default now (after a reindex to another). No index yet: the takedown is still recorded.
    with ExitStack() as opened:
        backend = open_existing_backend(settings) if recorded_model(settings) is not None else None
        if backend is not None:
            opened.callback(backend.close)
        register = opened.enter_context(closing(open_takedown_register(settings)))
        letters = opened.enter_context(closing(open_dead_letter_store(settings)))
        alerts = opened.enter_context(closing(open_alert_store(settings)))
        report = take_down(settings, backend, letters, alerts, register, ids)
    if as_json:
        print(json.dumps(report.to_json(), indent=1))
    else:
        print(
            f"{len(report.deleted)} post(s) taken down; {report.features_removed} kept feature row(s), "
            f"{report.alert_matches_removed} alert match(es) and {report.dead_letters_removed} dead letter(s) "
            f"removed; {report.recorded} id(s) recorded, never indexed again (`jointspace takedowns lift` "
            "allows one)",
            file=sys.stderr,
        )
        for post_id in report.missing:
            print(terminal.safe(f"  not in the index: {post_id}"), file=sys.stderr)
    if report.missing:
        raise typer.Exit(1)


takedowns_app = typer.Typer(
    help="The posts taken down by `jointspace delete`, which ingest leaves out.", no_args_is_help=True
)


@takedowns_app.command("list")
def takedowns_list(
    as_json: Annotated[bool, typer.Option("--json", help="[{id, time}] on stdout, oldest first.")] = False,
) -> None:
    """List the posts taken down, oldest first."""
    from jointspace.app import open_takedown_register
    from jointspace.settings import get_settings

    with closing(open_takedown_register(get_settings())) as register:
        entries = register.entries()
    if as_json:
        print(json.dumps([{"id": pid, "time": at} for pid, at in entries], indent=1, ensure_ascii=False))
        return
    for pid, at in entries:
        print(terminal.safe(f"{at}  {pid}"))
    print(f"{len(entries)} post(s) taken down", file=sys.stderr)


@takedowns_app.command("lift")
def takedowns_lift(
    post_ids: Annotated[list[str], typer.Argument(help="Ids to allow again; `-` reads them from stdin, one a line.")],
    as_json: Annotated[bool, typer.Option("--json", help="{lifted, not_taken_down} on stdout.")] = False,
) -> None:
    """Allow taken-down posts to be indexed again (by the next ingest that sends them; nothing is
    restored by this). Exits 1 when an id was not taken down."""
    from jointspace.app import open_takedown_register
    from jointspace.settings import get_settings

    ids = list(dict.fromkeys(_ids(post_ids)))
    with closing(open_takedown_register(get_settings())) as register:
        lifted = register.lift(ids)
    done = set(lifted)
    missing = [pid for pid in ids if pid not in done]
    if as_json:
        print(json.dumps({"lifted": lifted, "not_taken_down": missing}, indent=1, ensure_ascii=False))
    else:
        print(f"{len(lifted)} takedown(s) lifted: ingest them again to index them", file=sys.stderr)
        for pid in missing:
            print(terminal.safe(f"  not taken down: {pid}"), file=sys.stderr)
    if missing:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("delete")(delete)
    app.add_typer(takedowns_app, name="takedowns")
