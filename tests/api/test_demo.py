"""`jointspace demo`: prepares and indexes on the first run, finds everything in place on the second."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jointspace.protocols import ModelBundle

pytestmark = pytest.mark.slow


def shared_home_parts(home: Path, bundle: ModelBundle) -> None:
    """Share the slow, read-mostly caches of the session's home (the downloaded and unpacked Debian
    packages) with this throwaway home; the sentence model's vocabulary is the user's cache anyway."""
    shared = bundle.settings.home
    for part in ("cache/debs", "data/packages"):
        (home / part).parent.mkdir(parents=True, exist_ok=True)
        if (shared / part).exists():
            os.symlink(shared / part, home / part)


def run_demo(home: Path, bundle: ModelBundle) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    env.update(JOINTSPACE_HOME=str(home), JOINTSPACE_MODEL=str(bundle.path))
    command = [shutil.which("jointspace") or "", "demo", "--prepare-only", "--posts", "8"]
    if not command[0]:
        command = [sys.executable, "-c", "from jointspace.cli import main; main()", *command[1:]]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_demo_prepares_once_and_is_idempotent(tmp_path: Path, bundle: ModelBundle) -> None:
    shared_home_parts(tmp_path, bundle)
    first = run_demo(tmp_path, bundle)
    match = re.search(r"(\d+) sample posts, (\d+) newly indexed", first)
    assert match, first
    total, added = int(match.group(1)), int(match.group(2))
    assert total >= 4 and added == total
    posts_file = tmp_path / "data" / "demo" / "demo.jsonl"
    assert posts_file.is_file() and len(posts_file.read_text().splitlines()) == total

    second = run_demo(tmp_path, bundle)
    assert f"{total} sample posts, 0 newly indexed" in second
    # The nearest-word vocabulary is in the user's cache after the first run: nothing to prepare,
    # so no "first run only: a few minutes" notice (it printed on every run).
    assert "nearest-word" not in second, second

    from jointspace.backends import open_backend

    from jointspace.settings import Settings

    backend = open_backend(Settings(home=tmp_path), bundle.name, bundle.dim)
    try:
        assert backend.count() == total
        assert all(city for city, _ in backend.cities())
    finally:
        backend.close()
