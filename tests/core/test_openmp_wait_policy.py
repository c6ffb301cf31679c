"""torch's OpenMP threads wait passively in every jointspace process unless the user says otherwise
(bench/omp_wait.py measures why)."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = (
    "import os, sys; import jointspace.workers.runtime; "
    "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
)


def run(env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_passive_by_default_and_set_before_torch_loads() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    # libgomp reads the variable once, when torch first loads it: it must be set by then.
    assert run(env) == "PASSIVE False"


def test_a_policy_the_user_set_wins() -> None:
    assert run({**os.environ, "OMP_WAIT_POLICY": "ACTIVE"}).split()[0] == "ACTIVE"
