"""`jointspace model list` and `jointspace reindex` out of the box: a fresh home, the defaults, the
real commands. The index starts on the shipped bundle; model list shows the zero-training bundle's
folder, and reindex takes it by name."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.slow


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    env |= {"JOINTSPACE_HOME": str(home)}
    return subprocess.run(["jointspace", *args], capture_output=True, text=True, env=env, timeout=600)


def listing(home: Path) -> dict:
    done = run(home, "model", "list", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_model_list_shows_folders_and_reindex_uses_one_out_of_the_box(tmp_path: Path) -> None:
    home = tmp_path / "home"
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    rows = []
    for n, colour in enumerate(("red", "navy", "gold", "teal")):
        Image.new("RGB", (64, 64), colour).save(pictures / f"{colour}.png")
        rows.append({"id": f"tile-{n}", "image": str(pictures / f"{colour}.png"), "caption": f"a {colour} tile"})
    (tmp_path / "posts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    before = listing(home)  # no index yet: every bundle listed, none marked as the index's
    kinds = {b["kind"]: b for b in before["bundles"]}
    assert before["index"] is None and {"shipped", "zero-training"} <= set(kinds)
    assert kinds["shipped"]["default"] and not kinds["zero-training"]["default"]
    zero = kinds["zero-training"]
    assert Path(zero["folder"]).is_relative_to(home) and (Path(zero["folder"]) / "manifest.json").is_file()

    ingested = run(home, "ingest", str(tmp_path / "posts.jsonl"), "-q")
    assert ingested.returncode == 0, ingested.stderr
    after = listing(home)
    assert after["index"]["model"] == kinds["shipped"]["name"]
    assert [b["kind"] for b in after["bundles"] if b["index"]] == ["shipped"]
    text = run(home, "model", "list")
    assert zero["folder"] in text.stdout and "index" in text.stdout

    same = run(home, "reindex", "--bundle", kinds["shipped"]["name"], "-q")
    assert same.returncode == 2 and "jointspace model list" in same.stderr
    moved = run(home, "reindex", "--bundle", zero["name"], "-q")
    assert moved.returncode == 0, moved.stderr
    report = json.loads(moved.stdout)
    assert report["model"] == zero["name"] and report["indexed"] == len(rows) and not report["dead_lettered"]
    final = listing(home)
    assert final["index"]["model"] == zero["name"]
    assert [b["kind"] for b in final["bundles"] if b["index"]] == ["zero-training"]
