"""`jointspace train --sources mine` where the default validation sets are not prepared: validation
would fall back to a handful of pictures, so train refuses and says what to do; with the sets
named by the user it says how few they are and goes on."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from jointspace.encoders.training_runs import MIN_VALIDATION_IMAGES, RunOptions, Workspace, check_validation
from PIL import Image

from jointspace.errors import ConfigurationError
from jointspace.settings import Settings


def jointspace(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    env["JOINTSPACE_HOME"] = str(home)
    return subprocess.run(["jointspace", *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh home whose only data is 40 pictures of the user's own, imported as `mine`."""
    root = tmp_path_factory.mktemp("own")
    rows = []
    for n in range(40):
        Image.new("RGB", (32, 32), (n * 6, 90, 200 - n * 4)).save(root / f"p{n}.png")
        rows.append({"id": f"mine-{n}", "image": str(root / f"p{n}.png"), "caption": f"my picture {n} #tile"})
    (root / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    home = root / "home"
    done = jointspace(home, "data", "import", str(root / "mine.jsonl"), "--name", "mine", "-q")
    assert done.returncode == 0, done.stderr
    return home


def test_train_refuses_to_validate_on_a_handful_by_default(home: Path) -> None:
    done = jointspace(home, "train", "--sources", "mine")
    assert done.returncode == 2 and done.stdout == ""
    assert "validation would use only" in done.stderr and f"fewer than {MIN_VALIDATION_IMAGES}" in done.stderr
    assert "--val-sources mine" in done.stderr and "jointspace data prepare" in done.stderr


def test_chosen_small_validation_sets_are_named_with_a_warning(home: Path) -> None:
    ws = Workspace(Settings(home=home))
    options = RunOptions(train_sources=("mine",), val_sources=("mine",))
    warning = check_validation(ws, options, chosen=True)
    assert warning is not None and re.search(r"validation would use only \d+ pictures", warning)
    with pytest.raises(ConfigurationError, match="validation would use only"):
        check_validation(ws, RunOptions(train_sources=("mine",)), chosen=False)
