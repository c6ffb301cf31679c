"""`jointspace train --sources mine` on a home holding only the user's own 40 pictures: the default
needs no validation set and trains; validation sets named by the user that hold a handful are said to
be too few, and the run goes on. Asked for in code with the old default validation sets, it refuses."""

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
    # A fresh home embeds the WordNet class texts (about 5,000) once per run: minutes on a loaded machine.
    return subprocess.run(["jointspace", *args], capture_output=True, text=True, env=env, timeout=900)


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


def test_train_by_default_needs_no_validation_set(home: Path) -> None:
    """The default is leave-one-source-out's fixed choice (no validation sets): 40 pictures of one's
    own train a bundle; named validation sets that hold a handful are said to be too few."""
    done = jointspace(home, "train", "--sources", "mine")
    assert done.returncode == 0, done.stderr
    assert "no validation set: closed-form ridge" in done.stdout and "40 pictures" in done.stdout
    # The bare prompt prior (1,000 class texts) keeps the second run short; the warning does not depend on it.
    named = jointspace(home, "train", "--sources", "mine", "--val-sources", "mine", "--prior", "prompt")
    assert named.returncode == 0, named.stderr
    assert "validation would use only" in named.stderr and f"fewer than {MIN_VALIDATION_IMAGES}" in named.stderr


def test_chosen_small_validation_sets_are_named_with_a_warning(home: Path) -> None:
    ws = Workspace(Settings(home=home))
    options = RunOptions(train_sources=("mine",), val_sources=("mine",))
    warning = check_validation(ws, options, chosen=True)
    assert warning is not None and re.search(r"validation would use only \d+ pictures", warning)
    with pytest.raises(ConfigurationError, match="validation would use only"):
        check_validation(ws, RunOptions(train_sources=("mine",)), chosen=False)
