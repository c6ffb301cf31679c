"""`jointspace media roots [--json]`, `media roots add DIR`, `media roots remove DIR`: the folders
whose pictures the API serves (see jointspace.media_roots for the rule)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

media_app = typer.Typer(help="Where the pictures the API serves may live.", no_args_is_help=True)
roots_app = typer.Typer(
    help="Allowed media roots: the configured one, uploads, and the folders "
    "`jointspace ingest` recorded with the index.",
    invoke_without_command=True,
)
media_app.add_typer(roots_app, name="roots")


def _roots_report(settings: Any, recorded: list[str]) -> list[dict[str, Any]]:
    from jointspace.media_roots import configured_root, uploads_dir

    rows = [
        {
            "path": str(configured_root(settings)),
            "kind": "configured",
            "why": "JOINTSPACE_MEDIA_ROOT" if settings.media_root else "the data folder (JOINTSPACE_MEDIA_ROOT unset)",
        },
        {"path": str(uploads_dir(settings)), "kind": "uploads", "why": "pictures uploaded through POST /posts"},
    ]
    return rows + [{"path": path, "kind": "recorded", "why": "recorded with the index"} for path in recorded]


@roots_app.callback()
def roots_list(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list on stdout.")] = False
) -> None:
    """List the allowed media roots (with no subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    from jointspace.backends import open_existing_backend
    from jointspace.errors import ConfigurationError
    from jointspace.settings import get_settings

    settings = get_settings()
    try:
        backend = open_existing_backend(settings)
    except ConfigurationError:
        recorded: list[str] = []  # no index yet: only the fixed roots
    else:
        try:
            recorded = backend.media_roots()
        finally:
            backend.close()
    rows = _roots_report(settings, recorded)
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    for row in rows:
        print(f"{row['path']}\t{row['kind']}: {row['why']}")


def _resolved(folder: Path) -> str:
    from jointspace.errors import ConfigurationError

    path = folder.expanduser().resolve()
    if not path.is_dir():
        raise ConfigurationError(f"{folder}: not a folder")
    return str(path)


@roots_app.command("add")
def roots_add(
    folder: Annotated[Path, typer.Argument(help="A folder whose pictures (and its subfolders') may be served.")],
) -> None:
    """Record a folder with the index as an allowed media root."""
    from jointspace.backends import open_existing_backend
    from jointspace.errors import ConfigurationError
    from jointspace.settings import get_settings

    path = _resolved(folder)
    if Path(path) == Path(Path(path).anchor):
        raise ConfigurationError("refusing / as a media root: every picture on the machine would be served")
    backend = open_existing_backend(get_settings())
    try:
        added = backend.add_media_roots([path])
    finally:
        backend.close()
    print(f"{'added' if added else 'already allowed'}: {path}")


@roots_app.command("remove")
def roots_remove(folder: Annotated[Path, typer.Argument(help="A recorded media root.")]) -> None:
    """Stop serving the pictures of a recorded folder (the posts stay searchable)."""
    from jointspace.backends import open_existing_backend
    from jointspace.errors import ConfigurationError
    from jointspace.settings import get_settings

    backend = open_existing_backend(get_settings())
    try:
        # As recorded, else as resolved now (the folder itself may be gone).
        removed = backend.remove_media_root(str(folder)) or backend.remove_media_root(
            str(folder.expanduser().resolve())
        )
    finally:
        backend.close()
    if not removed:
        raise ConfigurationError(f"{folder} is not a recorded media root (`jointspace media roots` lists them)")
    print(f"removed: {folder}")


def register(app: typer.Typer) -> None:
    app.add_typer(media_app, name="media")
