"""`jointspace backup DIR` and `jointspace restore DIR` (see jointspace.backends.backup)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

ES_LOCATION = typer.Option(
    "--es-location",
    help="Elasticsearch: the snapshot folder as the node sees it "
    "(default: DIR/elasticsearch; below the node's path.repo).",
)


def _print(report: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    if as_json:
        print(json.dumps(report, indent=1))
    else:
        for line in lines:
            print(line, file=sys.stderr)


def backup(
    folder: Annotated[Path, typer.Argument(help="A new (or empty) folder for the backup.")],
    es_location: Annotated[str | None, ES_LOCATION] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    no_bundle: Annotated[
        bool,
        typer.Option(
            "--no-bundle",
            help="Leave out the model bundle that built the index (restore then needs that bundle in "
            "the home it restores into).",
        ),
    ] = False,
) -> None:
    """Back up the index (posts, vectors, media roots), the model bundle that built it, the uploaded
    pictures, the takedowns and the saved searches, while serving and ingesting."""
    from jointspace.alerts.backup import SavedSearchesPart
    from jointspace.backends.backup import BackupPart
    from jointspace.backends.backup import backup as run_backup
    from jointspace.encoders.bundle_backup import ModelBundlePart
    from jointspace.settings import get_settings

    _usable_folder(folder)
    settings = get_settings()
    parts: list[BackupPart] = [SavedSearchesPart(settings)] + ([] if no_bundle else [ModelBundlePart(settings)])
    manifest = run_backup(settings, folder, es_location, progress=not quiet, parts=parts)
    lines = [
        f"backed up {manifest['posts']} posts of model {manifest['model']} "
        f"({manifest['backend']}), {manifest['uploads']} uploaded pictures and "
        f"{manifest['saved_searches']} saved searches into {folder}"
    ]
    if not no_bundle and not manifest["model_bundle"]:
        lines.append(
            f"model bundle {manifest['model']!r} was not found in this home (`jointspace model list`): "
            "the backup does not carry it, and a home restoring it needs that bundle to search it"
        )
    _print(manifest, as_json, lines)


def _usable_folder(folder: Path) -> None:
    """A file where the folder should be, or a folder that cannot be made, in one line (not a
    traceback): the backup itself makes the folder and writes into it."""
    from jointspace.errors import ConfigurationError

    folder = folder.expanduser()  # as the backup reads it
    if folder.exists() and not folder.is_dir():
        raise ConfigurationError(f"{folder} is a file, not a folder: back up into a new folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot make the backup folder {folder}: {exc.strerror or exc}") from None


def restore(
    folder: Annotated[Path, typer.Argument(help="A folder written by `jointspace backup`.")],
    es_location: Annotated[str | None, ES_LOCATION] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Restore a backup into this home (refused when its index was built by another model bundle).

    The index found here is kept beside the restored one, for `jointspace rollback`. Posts taken
    down since the backup are left out. Saved searches this home lacks are added (without their
    past matches). The model bundle that built the index is installed when this home lacks it, and
    becomes the default unless JOINTSPACE_MODEL names one."""
    from jointspace.alerts.backup import SavedSearchesPart
    from jointspace.backends.backup import BackupPart
    from jointspace.backends.backup import restore as run_restore
    from jointspace.encoders.bundle_backup import ModelBundlePart, default_bundle_name
    from jointspace.settings import get_settings

    settings = get_settings()
    parts: list[BackupPart] = [SavedSearchesPart(settings), ModelBundlePart(settings)]
    report = run_restore(settings, folder, es_location, progress=not quiet, parts=parts)
    kept = report["posts"] - report["withheld"]
    lines = [f"restored {kept} posts of model {report['model']} from {folder}"]
    if report["model_bundle"]:
        lines.append(f"model bundle {report['model']!r} installed in {settings.models_dir}")
    if (default := default_bundle_name(settings)) is not None and default != report["model"]:
        lines.append(
            f"search and ingest load model bundle {default!r} here, which cannot query this index: set "
            f"JOINTSPACE_MODEL to {report['model']!r}'s folder (`jointspace model list`)"
        )
    if report["saved_searches"]:
        lines.append(
            f"{report['saved_searches']} saved search(es) added (their past matches stay in the backup's home)"
        )
    if report["withheld"]:
        lines.append(
            f"{report['withheld']} post(s) of the backup left out: taken down since (`jointspace takedowns list`)"
        )
    if report.get("previous"):
        lines.append(f"the index that was here is kept (`jointspace rollback` brings it back): {report['previous']}")
    lines.append(report["note"])
    _print(report, as_json, lines)


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)
