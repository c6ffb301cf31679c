"""Builds `.cache/package-view/jointspace/`: the package as it is installed, as links into the repository.

setup.py installs the top-level stage folders (`query/`, `workers/`, ...) as `jointspace.query` and
so on. Python finds them through setuptools' editable finder, an import hook; static tools (mypy,
import-linter's grimp) walk folders instead and would see only `jointspace/`. The view gives them
the layout Python sees: every entry of `jointspace/` and every stage folder, linked (not copied, so
nothing goes stale but a new top-level entry, and the view is rebuilt on every run). Which folder
is which subpackage is asked of the installed package itself, not repeated here.

    python scripts/package_view.py      # prints the folder to put on MYPYPATH / PYTHONPATH
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIEW = ROOT / ".cache" / "package-view"


def installed_stages() -> dict[str, Path]:
    """Top-level folders of the repository installed as `jointspace.<name>`, by the import system."""
    spec = importlib.util.find_spec("jointspace")
    if spec is None or spec.origin is None or Path(spec.origin).resolve() != ROOT / "jointspace" / "__init__.py":
        raise SystemExit(f"jointspace is not installed from {ROOT} (editable): pip install -e '.[test]' there first")
    stages = {}
    for folder in sorted(ROOT.iterdir()):
        if folder.name == "jointspace" or not (folder / "__init__.py").is_file():
            continue
        spec = importlib.util.find_spec(f"jointspace.{folder.name}")
        if spec is not None and spec.origin and Path(spec.origin).resolve() == (folder / "__init__.py").resolve():
            stages[folder.name] = folder
    return stages


def build() -> Path:
    package = VIEW / "jointspace"
    shutil.rmtree(VIEW, ignore_errors=True)
    package.mkdir(parents=True)
    entries = {p.name: p for p in (ROOT / "jointspace").iterdir() if p.name != "__pycache__"}
    for name, target in (entries | installed_stages()).items():
        os.symlink(os.path.relpath(target, package), package / name)
    return VIEW


if __name__ == "__main__":
    print(build().relative_to(ROOT))
