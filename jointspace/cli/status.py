"""`jointspace status`: what this home holds and whether its services answer (no model is loaded)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer


def status(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
    """The index (posts, cities, the model it was built by), the default bundle, the dead letters
    and the broker. Exits 1 when the index cannot be read or searched, the broker is down, or
    batches wait with no live worker."""
    from jointspace.app import home_status, settings_from_environment

    report = home_status(settings_from_environment())
    if as_json:
        print(json.dumps(report, indent=1))
    else:
        print(_text(report))
    if not report["ok"]:
        raise typer.Exit(1)


def _text(report: dict[str, Any]) -> str:
    index, model, broker = report["index"], report["model"], report["broker"]
    lines = [f"home          {report['home']}", f"index         {index['kind']} at {index['where']}"]
    if "posts" in index and "model" in index:
        top = ", ".join(f"{c['city']} {c['count']:,}" for c in index["top_cities"])
        lines.append(
            f"posts         {index['posts']:,} in {index['cities']:,} cities" + (f" ({top}, ...)" if top else "")
        )
        lines.append(f"built by      {index['model']}")
    if index.get("detail"):
        lines.append(f"              {'' if index['ok'] else 'PROBLEM: '}{index['detail']}")
    lines.append(f"model         {model['name']} ({model['dim']} dims; what search and ingest load)")
    dead = report["dead_letters"]
    lines.append(
        "dead letters  unknown (their store did not answer)"
        if dead is None
        else f"dead letters  {dead:,}" + (" (jointspace dead-letters list)" if dead else "")
    )
    lines.append(f"broker        {'' if broker['ok'] else 'PROBLEM: '}{broker['detail']}")
    workers = report.get("workers")
    if workers is not None:
        live, queued = workers["live"], workers["queued"]
        line = f"workers       {live or 'none'} live, {queued:,} batch{'' if queued == 1 else 'es'} queued"
        if not workers["ok"]:
            line = f"workers       PROBLEM: none live and {queued:,} queued: start one with `jointspace worker`"
        lines.append(line)
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.command("status")(status)
