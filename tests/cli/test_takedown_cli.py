"""`jointspace delete` works on whatever index the home holds, whichever bundle is the default now
(after `reindex --bundle B` the default bundle's model no longer matches the index), and before
any index exists (the takedown is still recorded, for a post on its way)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from jointspace.backends import open_backend

from jointspace.settings import Settings
from tests.backends.backend_corpus import city_corpus
from tests.ingest.test_ingest_inprocess import _cli


def test_delete_on_an_index_another_bundle_built_and_with_no_index_yet(tmp_path: Path) -> None:
    early = tmp_path / "early"
    done = _cli(["delete", "p1", "--json"], early)
    assert done.returncode == 1 and json.loads(done.stdout)["missing"] == ["p1"], done.stderr[-2000:]
    assert not (early / "embedded").exists()  # nothing made for it
    listed = json.loads(_cli(["takedowns", "list", "--json"], early).stdout)
    assert [entry["id"] for entry in listed] == ["p1"]

    home = tmp_path / "home"
    backend = open_backend(Settings(home=home), "bundle-b", 12)  # not the default's model
    assert not backend.upsert([replace(d, model="bundle-b") for d in city_corpus(5, 12) if d.id in {"p3", "p4"}]).errors
    backend.close()
    done = _cli(["delete", "p3", "--json"], home)
    assert done.returncode == 0 and json.loads(done.stdout)["deleted"] == ["p3"], done.stderr[-2000:]
    backend = open_backend(Settings(home=home), "bundle-b", 12, read_only=True)
    try:
        assert backend.get("p3") is None and backend.get("p4") is not None
    finally:
        backend.close()
