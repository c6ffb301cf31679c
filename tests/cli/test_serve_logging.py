"""What `jointspace serve` (and the demo) logs beside uvicorn's lines."""

from __future__ import annotations

import subprocess
import sys


def test_serve_logs_jointspace_at_info_but_not_the_faiss_loader_chatter() -> None:
    """faiss's loader logs at INFO every CPU build it could not import ("Could not load library
    with AVX512 support due to: ModuleNotFoundError(...)") before the one it loads: noise that reads
    as a failure in the demo's output at the first search. jointspace's own INFO lines stay."""
    code = (
        "import logging\n"
        "from jointspace.cli.serve import configure_logging\n"
        "configure_logging()\n"
        "import faiss\n"
        "logging.getLogger('jointspace.query.vocabulary').info('vocabulary ready')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "INFO:     jointspace.query.vocabulary: vocabulary ready" in done.stderr
    assert "faiss.loader" not in done.stderr and "ModuleNotFoundError" not in done.stderr, done.stderr
