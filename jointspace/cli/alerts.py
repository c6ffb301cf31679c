"""`jointspace alerts add|list|remove|matches`: saved searches that alert on new posts."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

import typer

from jointspace.choices import SearchMode
from jointspace.cli import filter_options, terminal

alerts_app = typer.Typer(
    help="Saved searches: every new batch of posts is checked against them; matches go to "
    "`alerts matches`, a Redis stream per search (with a broker), an optional webhook "
    "and the page.",
    no_args_is_help=True,
)


def _print(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


@contextmanager
def _store() -> Iterator[Any]:
    from jointspace.alerts import open_alert_store
    from jointspace.settings import get_settings

    store = open_alert_store(get_settings())
    try:
        yield store
    finally:
        store.close()


def _describe(search: dict[str, Any]) -> str:
    cut = f" min_score {search['min_score']:g}" if search.get("min_score") is not None else ""
    extra = f"  {search['filters']}" if search.get("filters") else ""
    hook = f"  → {search['webhook']}" if search.get("webhook") else ""
    # Names, expressions and webhooks come from whoever holds the API key: shown, never obeyed by the terminal.
    return terminal.safe(
        f"{search['id']}  [{search['mode']}{cut}]  {search['expression']}{extra}{hook}  ({search['name']})"
    )


@alerts_app.command("add")
def add(
    expression: Annotated[str, typer.Argument(help="The query, as for `jointspace search` (inline filters too).")],
    mode: Annotated[
        SearchMode, typer.Option(help="semantic (similarity), keyword (mentions the words) or hybrid (either).")
    ] = "semantic",
    min_score: Annotated[
        str | None, typer.Option(help="Similarity (-1..1) a new post must reach; needed for semantic and hybrid.")
    ] = None,
    webhook: Annotated[str | None, typer.Option(help="POST each match as JSON to this http(s) URL.")] = None,
    name: Annotated[str | None, typer.Option(help="A name to show (default: the expression).")] = None,
    city: filter_options.City = None,
    tag: filter_options.Tag = None,
    source: filter_options.Source = None,
    after: filter_options.After = None,
    before: filter_options.Before = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the saved search as JSON.")] = False,
) -> None:
    """Save a search; posts indexed from now on that match it are recorded and delivered.

    A search saved again with --name (name, query, mode, cut-off, filters and webhook alike) adds
    nothing: the one saved before is printed. Without --name every call saves a new one."""
    from jointspace.alerts.service import AlertService
    from jointspace.app import open_bundle, open_search_backend, open_search_service
    from jointspace.query.parser import QueryLimits, parse
    from jointspace.query.request import filters_from_values
    from jointspace.settings import get_settings

    settings = get_settings()
    parse(expression, QueryLimits.from_settings(settings))  # syntax errors before the model loads
    # The filter parameters as GET /search, POST /alerts and `jointspace search` read them.
    given = {"city": city or [], "tag": tag or [], "source": source or [], "after": after, "before": before}
    filters = filters_from_values({name: v for name, v in given.items() if v is not None})
    bundle = open_bundle(settings)
    backend = open_search_backend(settings, bundle)
    try:
        with _store() as store:
            service = AlertService(store, open_search_service(settings, bundle, backend), bundle.name, settings)
            saved, created = service.add_or_existing(expression, mode, min_score, webhook, name, filters)
            answer = service.with_matches(saved)
    finally:
        backend.close()
    if not created:
        print(f"the same search was saved before, as {saved.id}: nothing added", file=sys.stderr)
    if as_json:  # as POST /alerts answers: the saved search with its number of matches
        _print(answer)
    else:
        print(_describe(saved.to_json()))


@alerts_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="Print {\"alerts\": [...]}.")] = False) -> None:
    """Every saved search with its id and number of matches."""
    from jointspace.alerts.service import AlertService
    from jointspace.settings import get_settings

    with _store() as store:
        found = AlertService(store, None, "", get_settings()).list()
    if as_json:
        _print({"alerts": found})
        return
    for search in found:
        print(f"{_describe(search)}  {search['matches']} matches")
    print(f"{len(found)} saved searches", file=sys.stderr)


@alerts_app.command("remove")
def remove(
    search_id: Annotated[str, typer.Argument(metavar="ID", help="The saved search's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print {\"id\": ..., \"deleted\": true}.")] = False,
) -> None:
    """Delete a saved search with its matches, stream and deliveries."""
    from jointspace.alerts.service import AlertNotFound, AlertService
    from jointspace.settings import get_settings

    with _store() as store:
        if not AlertService(store, None, "", get_settings()).remove(search_id):
            raise AlertNotFound(f"no saved search with id {search_id!r} (see `jointspace alerts list`)")
    if as_json:  # as DELETE /alerts/{id} answers
        _print({"id": search_id, "deleted": True})
    else:
        print(f"removed {search_id}")


@alerts_app.command("matches")
def matches(
    search_id: Annotated[str, typer.Argument(metavar="ID", help="The saved search's id.")],
    since: Annotated[
        str | None,
        typer.Option(help="Only matches recorded since this time (ISO 8601) or this long ago (15m, 2h, 7d)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {\"alert\": {...}, \"matches\": [...]}.")] = False,
) -> None:
    """The posts that matched, newest first, each with its score."""
    from jointspace.alerts.service import AlertService, parse_since
    from jointspace.settings import get_settings

    with _store() as store:
        service = AlertService(store, None, "", get_settings())
        search = service.get(search_id)
        found = service.matches(search_id, parse_since(since), limit)
        alert = service.with_matches(search)
    if as_json:  # the alert as GET /alerts/{id}/matches gives it: with its number of matches
        _print({"alert": alert, "matches": [m.to_json() for m in found]})
        return
    for match in found:
        post = match.post
        hook = f"  webhook {match.delivery.status}" if match.delivery else ""
        print(
            terminal.safe(
                f"{_when(match.matched_at)}  {match.score:8.4f}  {post.id:<16} {(post.city or '-'):<12} "
                f"{' '.join(post.caption.split())[:60]}{hook}"
            )
        )
    print(f"{len(found)} matches of {search_id} ({search.expression})", file=sys.stderr)


def _when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
