"""Starts and stops Debian's `redis-server` on a loopback port, with an append-only file.

A child in its own session with a pidfile; state (pid, port, URL) in `<services_dir>/redis/state.json`.
Used as the Celery broker in development and by the tests, which also stop and restart it on the
same port to check that workers survive a broker outage.

Redis holds more than queued batches here: the dead letters, the saved searches and their matches.
A stop without persistence silently threw them away, so the server keeps an append-only file
(fsync every second) in its folder, and a start without `port` comes back on the last one (workers
and `serve` keep their URL).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jointspace.errors import BackendUnavailableError, ConfigurationError
from jointspace.services.processes import (
    exclusive,
    free_ports,
    last_ports,
    log_tail,
    pid_alive,
    port_in_use,
    read_json,
    remember_ports,
    remembered_ports,
    terminate,
    write_json_atomic,
)
from jointspace.settings import Settings

HOST = "127.0.0.1"


@dataclass(frozen=True)
class RedisState:
    pid: int
    port: int
    dir: str

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def marker(self) -> tuple[str, ...]:
        # redis-server retitles itself "redis-server 127.0.0.1:PORT"; before that its argv holds the port.
        # Either way a reused pid running something else will not match.
        return (f"{HOST}:{self.port}", f"--port {self.port} ")


class LocalRedis:
    """Controls one local redis-server whose state lives under `root` (normally `<services_dir>/redis`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.state_file = self.root / "state.json"
        self.log_path = self.root / "redis.log"

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalRedis:
        return cls(settings.services_dir / "redis")

    def start(self, port: int | None = None, timeout_s: float = 15.0) -> tuple[RedisState, bool]:
        """Starts redis-server (on `port`, else the last one if free, else a free one) and waits for
        PING; returns (state, already_running).

        Idempotent: a running server is reported, not started twice. Raises ConfigurationError when
        redis-server is missing or the port is busy, BackendUnavailableError when it does not come up.
        """
        with exclusive(self.root / ".lock"):
            current = self._running()
            if current is not None:
                if port is not None and port != current.port:
                    raise ConfigurationError(
                        f"redis already runs at {current.url}: stop it before moving it to port {port}"
                    )
                return current, True
            executable = shutil.which("redis-server")
            if executable is None:
                raise ConfigurationError(
                    "redis-server is not installed: apt-get install redis-server (scripts/setup.sh does it)"
                )
            if port is None:
                port = (remembered_ports(self.root, 1) or free_ports(1))[0]
            elif port_in_use(port):
                raise ConfigurationError(f"port {port} is in use: pick another, or leave it out to use a free one")
            self.root.mkdir(parents=True, exist_ok=True)
            pidfile = self.root / "redis.pid"
            command = [
                executable,
                "--bind",
                HOST,
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--daemonize",
                "no",
                "--pidfile",
                str(pidfile),
                "--dir",
                str(self.root),
                "--logfile",
                str(self.log_path),
                "--protected-mode",
                "yes",
            ]
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            state = RedisState(pid=process.pid, port=port, dir=str(self.root))
            write_json_atomic(self.state_file, asdict(state))
            try:
                self._wait_ready(state, timeout_s)
            except BaseException:
                terminate(state.pid, 5)
                self.state_file.unlink(missing_ok=True)
                raise
            remember_ports(self.root, [port])
            return state, False

    def last_port(self) -> int | None:
        """The port of the last start, running or not."""
        ports = last_ports(self.root)
        return ports[0] if ports else None

    def stop(self, grace_s: float = 10.0) -> bool:
        """Stops the server (SIGTERM, SIGKILL after `grace_s`); True if one was running."""
        with exclusive(self.root / ".lock"):
            data = read_json(self.state_file)
            if data is None:
                return False
            state = RedisState(**data)
            was_running = pid_alive(state.pid, state.marker)
            terminate(state.pid, grace_s, state.marker)
            self.state_file.unlink(missing_ok=True)
            return was_running

    def restart(self, timeout_s: float = 15.0) -> RedisState:
        """Stops and starts the server again on the same port (an outage of the broker, for fault tests)."""
        data = read_json(self.state_file)
        if data is None:
            raise ConfigurationError(f"no local redis recorded under {self.root}: run `jointspace redis start`")
        port = data["port"]
        self.stop()
        state, _ = self.start(port=port, timeout_s=timeout_s)
        return state

    def status(self) -> dict[str, Any]:
        """`{"url", "status": "running"|"stopped"|"dead", "pid", "port"}`."""
        data = read_json(self.state_file)
        if data is None:
            return {"url": None, "status": "stopped", "pid": None, "port": None}
        state = RedisState(**data)
        alive = pid_alive(state.pid, state.marker) and _ping(state.port, 2.0)
        return {"url": state.url, "status": "running" if alive else "dead", "pid": state.pid, "port": state.port}

    def _running(self) -> RedisState | None:
        data = read_json(self.state_file)
        if data is None:
            return None
        state = RedisState(**data)
        if pid_alive(state.pid, state.marker):
            return state
        self.state_file.unlink(missing_ok=True)
        return None

    def _wait_ready(self, state: RedisState, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not _ping(state.port, 1.0):
            if not pid_alive(state.pid):
                raise BackendUnavailableError(
                    f"redis-server exited while starting; last lines of {self.log_path}:\n{log_tail(self.log_path)}"
                )
            if time.monotonic() >= deadline:
                raise BackendUnavailableError(
                    f"redis-server on port {state.port} did not answer PING within "
                    f"{timeout_s:.0f}s; last lines of {self.log_path}:\n{log_tail(self.log_path)}"
                )
            time.sleep(0.1)


def _ping(port: int, timeout_s: float) -> bool:
    """A raw RESP PING: no client library needed for a liveness probe."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout_s) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False
