"""`jointspace data prepare`: the project's own training, demo and test data from Debian packages."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

DEFAULT_SOURCES = "openclipart,tuxpaint,gcompris,scratch,kphotoalbum"

data_app = typer.Typer(help="Prepare the training, demo and test data from Debian packages.", no_args_is_help=True)


@data_app.command("prepare")
def prepare_command(
    sources: Annotated[str, typer.Option(help="Comma-separated sources to prepare.")] = DEFAULT_SOURCES,
    limit: Annotated[Optional[int], typer.Option(min=1, help="At most N items per source (a fixed spread).")] = None,
    size: Annotated[Optional[int], typer.Option(min=16, help="Longest image side in pixels [Settings.data_image_size].")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Rendering processes [Settings.data_workers].")] = None,
) -> None:
    """Download the packages (cached), render the pictures and write posts.jsonl per source and all.jsonl.

    Re-running skips every source whose output is complete for the same package, size and limit.
    """
    from jointspace.datasets.prepare import cache_dir_of, prepare
    from jointspace.settings import get_settings

    settings = get_settings()
    names = [s.strip() for s in sources.split(",") if s.strip()]
    reports = prepare(names, settings.data_dir, cache_dir_of(settings.home),
                      size=size or settings.data_image_size, limit=limit, workers=workers or settings.data_workers)
    typer.echo(f"{'source':<12} {'items':>6} {'failed':>6} {'seconds':>8} {'MB':>7}  package")
    for r in reports:
        state = " (cached)" if r.skipped else ""
        typer.echo(f"{r.source:<12} {r.items:>6} {r.failures:>6} {r.seconds:>8.1f} {r.bytes_on_disk / 1e6:>7.1f}  "
                   f"{r.deb}{state}")
    typer.echo(f"data in {settings.data_dir} (all.jsonl combines every prepared source)")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
