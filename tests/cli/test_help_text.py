"""Help text follows the terminal's width: docstrings wrapped in the source do not break mid-sentence."""

from __future__ import annotations

import os
import subprocess
import sys

from jointspace.cli import _reflow


def test_prose_paragraphs_are_joined_and_lists_kept() -> None:
    text = """First line of a sentence
    that goes on.

    - one item
    - another item
    """
    assert _reflow(text) == "First line of a sentence that goes on.\n\n- one item\n- another item"


def test_wide_terminal_shows_a_docstring_sentence_on_one_line() -> None:
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb"}
    done = subprocess.run(
        [sys.executable, "-c", "from jointspace.cli import main; main()", "status", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    # The docstring breaks its line after "the dead letters" in the source.
    assert "the dead letters and the broker" in done.stdout, done.stdout
