"""`jointspace model list`: the model bundles, their folders, the default and the one the index holds.
`jointspace model import open-clip`: a bundle from a pretrained CLIP-style checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

model_app = typer.Typer(help="The model bundles this home can use.", no_args_is_help=True)


@model_app.command("list")
def model_list(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
    """Each bundle with its folder; `*` marks the default, `index` the one the index was built by.
    Any other listed bundle is a target for `jointspace reindex --bundle NAME`."""
    from jointspace.encoders.catalog import catalog
    from jointspace.settings import get_settings

    found = catalog(get_settings())
    if as_json:
        print(json.dumps(found.to_json(), indent=1))
        return
    for bundle in found.bundles:
        marks = ("*" if bundle.default else " ") + (" index" if bundle.in_index else "      ")
        print(f"{marks}  {bundle.name:<52} {bundle.kind:<13} {bundle.dim:>4}d  {bundle.folder}")
    if found.index_model is None:
        print(f"index: {found.index_note or 'none yet (jointspace ingest FILE builds one)'}")
    elif not any(b.in_index for b in found.bundles):
        print(f"index: built by {found.index_model!r}, which is not among these folders")
    print("* = loaded by search, serve and ingest; reindex into another with: jointspace reindex --bundle NAME")


import_app = typer.Typer(help="Make a bundle from pretrained weights.", no_args_is_help=True)
model_app.add_typer(import_app, name="import")


@import_app.command("open-clip")
def import_open_clip(
    arch: Annotated[str, typer.Option(help="open_clip architecture, e.g. ViT-B-32 (open_clip.list_models()).")],
    checkpoint: Annotated[
        Path, typer.Option(help="Local checkpoint file of that arch (.pt/.bin/.safetensors); nothing is downloaded.")
    ],
    name: Annotated[str | None, typer.Option(help="Bundle name; default open-clip-<arch>-<sha256[:8]>.")] = None,
    vocab_size: Annotated[
        int | None,
        typer.Option(min=1, help="Common words embedded for nearest words (default: JOINTSPACE_TEXT_VOCAB_SIZE)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Write a bundle under the models folder whose text and image encoders are the checkpoint's
    CLIP towers. It does not become the default: `jointspace reindex --bundle NAME` moves the index
    to it, then set JOINTSPACE_MODEL to its folder."""
    from jointspace.encoders.open_clip_import import import_open_clip as run_import
    from jointspace.settings import get_settings

    made = run_import(
        get_settings(), arch, checkpoint, name=name, vocab_size=vocab_size, progress=not (quiet or as_json)
    )
    if as_json:
        print(json.dumps(made.to_json(), indent=1))
        return
    print(
        f"imported {arch} ({made.dim}-d, checkpoint sha256 {made.sha256[:12]}…) as {made.name}\n"
        f"  folder: {made.folder}\n"
        f"  next:   jointspace reindex --bundle {made.name}   (then JOINTSPACE_MODEL={made.folder})"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")
