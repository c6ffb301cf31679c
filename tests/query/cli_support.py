"""The `jointspace search` subprocess tests' home (test_cli*.py): a real bundle folder
(GloVe-format word vectors with the hand-set geometry) and the embedded backend holding the
geometry's documents, under a temporary JOINTSPACE_HOME."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

from jointspace.backends import open_backend

from jointspace.settings import Settings
from tests.query.query_geometry import DIM, WORDS, axis, documents

BUNDLE = "geometry-cli"


def make_home(home: Path) -> Path:
    """Writes the bundle and indexes the documents under `home`; returns it."""
    bundle = home / "bundle"
    bundle.mkdir()
    (bundle / "vectors.txt").write_text(
        "".join(f"{w} {' '.join(f'{x:g}' for x in axis(w))}\n" for w in WORDS), encoding="utf-8"
    )
    (bundle / "manifest.json").write_text(
        json.dumps(
            {
                "format": 1,
                "name": BUNDLE,
                "dim": DIM,
                "text": {"name": "glove", "config": {"path": "vectors.txt", "name": "geometry"}, "dim": DIM},
                "image": {"name": "zeroshot", "config": {}},
            }
        ),
        encoding="utf-8",
    )
    backend = open_backend(Settings(home=home), BUNDLE, DIM)
    result = backend.upsert([dataclasses.replace(d, model=BUNDLE) for d in documents()])
    assert not result.errors
    backend.close()
    return home


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    env |= {"JOINTSPACE_HOME": str(home), "JOINTSPACE_MODEL": str(home / "bundle")}
    return subprocess.run(["jointspace", "search", *args], capture_output=True, text=True, env=env, timeout=120)
