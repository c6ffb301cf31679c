"""`jointspace data import` follows ingest's rule for an id given twice: the last copy wins, the
earlier is reported, and imported + skipped = lines read."""

from __future__ import annotations

import json
from pathlib import Path

from jointspace.datasets.imported import import_posts
from jointspace.ingest.sources import open_source
from PIL import Image

from jointspace.settings import Settings


def test_the_last_copy_of_an_id_wins_and_is_counted(tmp_path: Path) -> None:
    Image.new("RGB", (16, 16), "red").save(tmp_path / "r.png")
    rows = [
        {"id": "a", "image": "r.png", "caption": "first"},
        {"id": "b", "image": "r.png", "caption": "b"},
        {"id": "a", "image": "r.png", "caption": "second"},
        {"id": "c", "image": "gone.png"},
    ]
    lines = [json.dumps(r) for r in rows] + ["{not json"]
    (tmp_path / "mine.jsonl").write_text("\n".join(lines) + "\n")
    source = open_source("jsonl", str(tmp_path / "mine.jsonl"), Settings(home=tmp_path / "home"))
    try:
        report = import_posts(source, "mine", tmp_path / "data", progress=False)
    finally:
        source.close()
    assert report.imported == 2 and report.duplicates == 1 and len(report.skipped) == 3
    assert report.imported + len(report.skipped) == len(lines)
    written = {p["id"]: p for p in map(json.loads, report.path.read_text().splitlines())}
    assert written["a"]["caption"] == "second" and set(written) == {"a", "b"}
    assert any("duplicate id 'a': replaced by" in reason for reason in report.skipped.values())
