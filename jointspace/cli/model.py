"""`jointspace model list`: the model bundles, their folders, the default and the one the index holds."""
from __future__ import annotations

import json
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


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")
