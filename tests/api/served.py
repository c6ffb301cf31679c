"""`jointspace serve` as a real process over an embedded home (for the browser and contract tests)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

START_TIMEOUT_S = 240.0
# A server that needs longer than this after SIGTERM hangs on something (an open event stream, a
# worker thread): the test that started it fails at teardown.
STOP_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serve(home: Path, env_extra: dict[str, str]) -> Iterator[str]:
    """Starts `jointspace serve` on a free port with JOINTSPACE_HOME=home (plus `env_extra`), waits
    for /health, yields the base URL, and stops the process: SIGTERM, and SIGKILL plus an
    AssertionError when it has not exited STOP_TIMEOUT_S later (unless the body already failed)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    env.update(JOINTSPACE_HOME=str(home), OMP_NUM_THREADS="2", **env_extra)
    command = [shutil.which("jointspace") or sys.executable, "serve", "--port", str(port)]
    if not shutil.which("jointspace"):
        command = [sys.executable, "-c", "from jointspace.cli import main; main()", "serve", "--port", str(port)]
    log = home / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"jointspace serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"jointspace serve did not answer /health in {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
            stopped = True
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            stopped = False
    # Reached only when the body did not raise: its own failure is the one to report.
    if not stopped:
        raise AssertionError(
            f"jointspace serve did not stop within {STOP_TIMEOUT_S:g} s of SIGTERM:\n{log.read_text()[-3000:]}"
        )
