"""The tests import the installed package: no test edits the import path (pytest runs with
--import-mode=importlib and the test folders are packages under `tests.`, so none shadows a part
of jointspace)."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_test_edits_the_import_path() -> None:
    needle = "sys." + "path"  # spelt apart so that this file does not find itself
    found = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("*.py")
        if "node_modules" not in path.parts and needle in path.read_text(encoding="utf-8")
    ]
    assert not found, found


def test_every_test_folder_is_a_package_under_tests() -> None:
    folders = {p.parent for p in TESTS.rglob("*.py") if "node_modules" not in p.parts}
    assert not sorted(str(f.relative_to(TESTS)) for f in folders if not (f / "__init__.py").is_file())
