"""Process and port helpers shared by the local services.

Hand-written because the standard library has the pieces but no single call for "is this pid one
of ours and alive, not a zombie" or "stop with a grace period": psutil would do it, but it is not
otherwise needed, and these few lines are all the services use.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from jointspace.atomic_write import write_text_atomic

Marker = str | tuple[str, ...] | None


def pid_alive(pid: int, marker: Marker = None) -> bool:
    """Whether `pid` runs (not a zombie) and, given `marker`, whether its command line contains it
    (or one of them, given a tuple).

    The marker guards against pid reuse: a stale state file must never make us signal a stranger.
    """
    try:
        # Reaps our own exited children, so that they do not linger as zombies that look alive.
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = _cmdline(pid)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    # The state letter follows the parenthesised command name, which may itself contain spaces.
    state = stat.rsplit(")", 1)[-1].split()[0]
    if state in ("Z", "X"):
        return False
    if not cmdline:
        return True  # still inside exec(): it is the child we just started
    markers = (marker,) if isinstance(marker, str) else marker or ()
    return not markers or any(m in cmdline for m in markers)


def _cmdline(pid: int) -> str:
    # Right after exec() the kernel shows an empty command line for a moment: read again briefly.
    for _ in range(20):
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        if raw:
            return raw.replace(b"\0", b" ").decode(errors="replace")
        time.sleep(0.01)
    return ""


def wait_gone(pid: int, timeout_s: float, marker: Marker = None) -> bool:
    """Polls until `pid` has exited; True if it did within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid, marker):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def terminate(pid: int, grace_s: float, marker: Marker = None) -> None:
    """SIGTERM, wait up to `grace_s`, then SIGKILL. Does nothing if `pid` is not (ours and) alive."""
    if not pid_alive(pid, marker):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not wait_gone(pid, grace_s, marker):
        kill(pid, marker)


def kill(pid: int, marker: Marker = None, timeout_s: float = 10.0) -> None:
    """SIGKILL and wait until the process is gone."""
    if not pid_alive(pid, marker):
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    wait_gone(pid, timeout_s, marker)


LAST_PORTS = "last-ports.json"  # kept across stops, unlike state.json


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports free right now on `host` (all sockets held open together so they differ)."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
        return ports


def remembered_ports(root: Path, count: int) -> list[int] | None:
    """The ports a service under `root` last started on, when there were `count` and all are free.

    A restart without an explicit port comes back on them: workers, a running `serve` and the
    exported URL in the user's shell keep pointing at the service (a new random port made workers
    dead-letter every batch against a URL that no longer answered)."""
    data = read_json(root / LAST_PORTS)
    ports = data.get("ports") if data else None
    if not isinstance(ports, list) or len(ports) != count or not all(isinstance(p, int) for p in ports):
        return None
    return ports if not any(port_in_use(p) for p in ports) else None


def remember_ports(root: Path, ports: list[int]) -> None:
    write_json_atomic(root / LAST_PORTS, {"ports": ports})


def last_ports(root: Path) -> list[int] | None:
    """The ports last started on, free or not (to say that a restart moved the service)."""
    data = read_json(root / LAST_PORTS)
    ports = data.get("ports") if data else None
    return ports if isinstance(ports, list) else None


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def log_tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a log file, or a note that there is none."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Writes via a temporary file and rename, so a reader never sees half a state file."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


@contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """An inter-process lock (flock), so that two commands never build or start into one folder at once."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
