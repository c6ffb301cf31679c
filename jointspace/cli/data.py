"""`jointspace data prepare`: the project's own training, demo and test data from Debian packages."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from jointspace.datasets.scanners import SOURCE_NAMES
from jointspace.errors import ConfigurationError

DEFAULT_SOURCES = ",".join(SOURCE_NAMES)  # every source

data_app = typer.Typer(
    help="Prepare the training, demo and test data from Debian and npm packages, or import your own posts.",
    no_args_is_help=True,
)


@data_app.command("prepare")
def prepare_command(
    sources: Annotated[str, typer.Option(help="Comma-separated sources to prepare (default: all).")] = DEFAULT_SOURCES,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N items per source (a fixed spread).")] = None,
    size: Annotated[
        int | None, typer.Option(min=16, help="Longest image side in pixels [Settings.data_image_size].")
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Rendering processes [Settings.data_workers].")] = None,
) -> None:
    """Download the packages (cached), render the pictures and write posts.jsonl per source and all.jsonl.

    Re-running skips every source whose output is complete for the same package, size and limit.
    """
    from jointspace.datasets.prepare import cache_dir_of, prepare
    from jointspace.settings import get_settings

    settings = get_settings()
    names = [s.strip() for s in sources.split(",") if s.strip()]
    reports = prepare(
        names,
        settings.data_dir,
        cache_dir_of(settings.home),
        size=size or settings.data_image_size,
        limit=limit,
        workers=workers or settings.data_workers,
    )
    # pictures: kept after failures and duplicates; photos: real photographs among them (the scanner
    # knows from the package's folders); words: distinct label words; dupes: near-identical to an
    # earlier source's picture (perceptual hash), dropped.
    typer.echo(
        f"{'source':<12} {'pictures':>8} {'photos':>6} {'words':>6} {'dupes':>5} {'failed':>6} "
        f"{'seconds':>8} {'MB':>7}  package"
    )
    for r in reports:
        state = " (cached)" if r.skipped else ""
        typer.echo(
            f"{r.source:<12} {r.items:>8} {r.photos:>6} {r.label_words:>6} {r.duplicates:>5} {r.failures:>6} "
            f"{r.seconds:>8.1f} {r.bytes_on_disk / 1e6:>7.1f}  {r.deb}{state}"
        )
    typer.echo(
        f"{'all':<12} {sum(r.items for r in reports):>8} {sum(r.photos for r in reports):>6} "
        f"{'':>6} {sum(r.duplicates for r in reports):>5} {sum(r.failures for r in reports):>6}  "
        f"from {len(reports)} sources"
    )
    typer.echo(f"data in {settings.data_dir} (all.jsonl combines every prepared source)")


class ImportKind(StrEnum):
    auto = "auto"
    jsonl = "jsonl"
    instacities = "instacities"


@data_app.command("import")
def import_command(
    target: Annotated[
        str,
        typer.Argument(
            help="A JSONL file of posts (`-`: stdin) or an InstaCities1M folder "
            "(`img_resized/<city>/<id>.jpg` beside `captions/<city>/<id>.txt`)."
        ),
    ],
    name: Annotated[
        str, typer.Option(help="The source name to train and evaluate with (`jointspace train --sources NAME`).")
    ],
    source: Annotated[ImportKind, typer.Option(help="How to read TARGET; auto guesses from it.")] = ImportKind.auto,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N posts.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Make your own posts a data source: split 80/10/10 by id, images left where they are."""
    import json

    from jointspace.datasets.imported import check_name, import_posts
    from jointspace.ingest.sources import guess_kind, open_source
    from jointspace.settings import get_settings

    settings = get_settings()
    check_name(name)  # before reading a million files
    kind = guess_kind(target) if source is ImportKind.auto else source.value
    if kind not in ("jsonl", "instacities"):
        raise ConfigurationError(f"{target}: import reads a JSONL file or an InstaCities folder, not a {kind} source")
    src = open_source(kind, target, settings)
    try:
        report = import_posts(src, name, settings.data_dir, limit=limit, progress=not quiet)
    finally:
        src.close()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "name": report.name,
                    "path": str(report.path),
                    "imported": report.imported,
                    "splits": report.splits,
                    "skipped": report.skipped,
                    "duplicates": report.duplicates,
                },
                indent=1,
            )
        )
        return
    splits = ", ".join(f"{k} {v}" for k, v in report.splits.items())
    typer.echo(
        f"imported {report.imported} posts as source {name!r} ({splits}) into {report.path}; "
        f"{len(report.skipped)} skipped, of which {report.duplicates} duplicate ids (the last copy wins)"
    )
    if report.skipped:
        typer.echo(f"skipped {len(report.skipped)}:", err=True)
        for origin, reason in list(report.skipped.items())[:10]:
            typer.echo(f"  {origin}: {reason}", err=True)
    typer.echo(f"next: jointspace train --sources {name}   (add ,photos to learn from the project's photos too)")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
