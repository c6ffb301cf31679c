"""Starts, watches and stops a real Elasticsearch 8.19.21 node, or a cluster of N nodes, on loopback.

Each node is its own JVM running the launcher of `docker/es-launcher/`. State (pids, ports, URL)
lives in `<services_dir>/es/state.json`, so `jointspace es status|stop` work from another process.
Data persists across stop/start, in a folder per cluster size (a 1-node and a 3-node cluster are
different clusters and cannot share data).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jointspace.errors import BackendUnavailableError, ConfigurationError
from jointspace.services import es_launcher
from jointspace.services.es_launcher import Progress
from jointspace.services.processes import (
    exclusive,
    free_ports,
    kill,
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
_HEALTH_RANK = {"red": 0, "yellow": 1, "green": 2}


@dataclass
class NodeState:
    name: str
    http_port: int
    transport_port: int
    dir: str
    pid: int | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return Path(self.dir) / "node.log"

    @property
    def ready_path(self) -> Path:
        return Path(self.dir) / "ready.json"

    def alive(self) -> bool:
        # The node folder is on the JVM's command line: it tells our node from a stranger that reuses the pid.
        return self.pid is not None and pid_alive(self.pid, marker=f"-Epath.home={self.dir}")


@dataclass
class ClusterState:
    cluster_name: str
    heap: str
    nodes: list[NodeState] = field(default_factory=list)
    started_at: float = 0.0

    @property
    def url(self) -> str:
        return self.nodes[0].url

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"url": self.url, "urls": self.urls}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterState:
        return cls(
            cluster_name=data["cluster_name"],
            heap=data["heap"],
            started_at=data.get("started_at", 0.0),
            nodes=[NodeState(**n) for n in data["nodes"]],
        )


@dataclass(frozen=True)
class StartResult:
    state: ClusterState
    already_running: bool
    seconds: float
    health: str


class LocalElasticsearch:
    """Controls the local node/cluster whose state lives under `root` (normally `<services_dir>/es`).

    All methods block until done, within the timeouts given; none leaves a half-started JVM behind.
    """

    def __init__(
        self,
        root: Path,
        progress: Progress | None = None,
        owner_pid: int | None = None,
        settings: Settings | None = None,
    ) -> None:
        """`owner_pid`: the nodes shut themselves down when that process exits (test sessions).
        `settings`: heap, timeouts and path.repo (`es_local_*`); None: their defaults (tests and
        benchmarks, which pass heap and timeouts to `start`)."""
        self.root = Path(root)
        # model_construct: the declared defaults, without reading the environment.
        self.settings = settings if settings is not None else Settings.model_construct()
        self.state_file = self.root / "state.json"
        self.progress = progress
        self.owner_pid = owner_pid

    @classmethod
    def from_settings(cls, settings: Settings, progress: Progress | None = None) -> LocalElasticsearch:
        return cls(settings.services_dir / "es", progress, settings=settings)

    # ---------------------------------------------------------------- lifecycle

    def start(
        self, nodes: int = 1, http_port: int | None = None, heap: str | None = None, timeout_s: float | None = None
    ) -> StartResult:
        """Starts `nodes` nodes and waits until they form a cluster that is yellow or green.

        Idempotent: if the same cluster already runs, it is reported, not started twice. Ports are
        `http_port`, `http_port+1`, ... when given, else the last start's if they are free, else free
        ones. Raises ConfigurationError for a missing tool or a busy port, BackendUnavailableError
        when a node dies or the timeout passes (the nodes started are stopped again, and the message
        carries the tail of their logs).
        """
        settings = self.settings
        heap = heap or settings.es_local_heap
        timeout_s = timeout_s if timeout_s is not None else settings.es_local_start_timeout_s
        if nodes < 1:
            raise ConfigurationError("--nodes must be at least 1")
        with exclusive(self.root / ".lock"):
            return self._start_locked(nodes, http_port, heap, timeout_s)

    def _start_locked(self, nodes: int, http_port: int | None, heap: str, timeout_s: float) -> StartResult:
        began = time.monotonic()
        existing = self._running_state()
        if existing is not None:
            if len(existing.nodes) != nodes:
                raise ConfigurationError(
                    f"a {len(existing.nodes)}-node Elasticsearch already runs at {existing.url}: "
                    "run `jointspace es stop` before starting another size"
                )
            health = self._wait_healthy(existing, timeout_s)
            return StartResult(existing, already_running=True, seconds=time.monotonic() - began, health=health)

        java = es_launcher.find_java()
        build = es_launcher.ensure_built(self.root / "launcher-build.log", self.progress)
        state = self._plan(nodes, http_port, heap)
        write_json_atomic(self.state_file, state.to_json())
        try:
            for node in state.nodes:
                self._spawn(java, build, state, node)
            write_json_atomic(self.state_file, state.to_json())
            if self.progress:
                self.progress(f"Waiting for {nodes} node(s) to form a cluster at {state.url}...")
            health = self._wait_healthy(state, timeout_s)
        except BaseException:
            # Also on Ctrl-C: a JVM left behind would hold the ports and the data folder's lock.
            self._stop_nodes(state.nodes, grace_s=10)
            self.state_file.unlink(missing_ok=True)
            raise
        remember_ports(self.root, [n.http_port for n in state.nodes])
        return StartResult(state, already_running=False, seconds=time.monotonic() - began, health=health)

    def last_url(self) -> str | None:
        """The URL of the last start, running or not."""
        ports = last_ports(self.root)
        return f"http://{HOST}:{ports[0]}" if ports else None

    def stop(self, grace_s: float | None = None) -> list[str]:
        """Stops every node (SIGTERM, then SIGKILL after `grace_s`); returns the names of those that ran."""
        grace_s = grace_s if grace_s is not None else self.settings.es_local_stop_timeout_s
        with exclusive(self.root / ".lock"):
            state = self._load()
            if state is None:
                return []
            ran = [n.name for n in state.nodes if n.alive()]
            self._stop_nodes(state.nodes, grace_s)
            self.state_file.unlink(missing_ok=True)
            return ran

    def kill_node(self, index: int) -> NodeState:
        """SIGKILLs node `index` (0-based), as a crash would, for fault tests. The state keeps its ports."""
        state = self._require_state()
        node = state.nodes[index]
        if node.pid is not None:
            kill(node.pid, marker=f"-Epath.home={node.dir}")
        return node

    def restart_node(self, index: int, timeout_s: float | None = None, wait_for: str = "yellow") -> NodeState:
        """Starts node `index` again on its old ports and data, stopping it first if it still runs.

        Waits until all nodes are back in the cluster with at least `wait_for` health.
        """
        timeout_s = timeout_s if timeout_s is not None else self.settings.es_local_start_timeout_s
        state = self._require_state()
        node = state.nodes[index]
        if node.pid is not None and node.alive():
            terminate(node.pid, self.settings.es_local_stop_timeout_s, marker=f"-Epath.home={node.dir}")
        self._spawn(es_launcher.find_java(), es_launcher.ensure_built(self.root / "launcher-build.log"), state, node)
        write_json_atomic(self.state_file, state.to_json())
        self._wait_healthy(state, timeout_s, wait_for=wait_for)
        return node

    def ensure_all_running(self, timeout_s: float | None = None) -> list[str]:
        """Restarts any node that is not running (after a fault test); returns the names restarted."""
        state = self._require_state()
        restarted = []
        for index, node in enumerate(state.nodes):
            if not node.alive():
                self.restart_node(index, timeout_s)
                restarted.append(node.name)
        return restarted

    # ---------------------------------------------------------------- status

    def state(self) -> ClusterState | None:
        """The recorded cluster, whether or not its processes still run."""
        return self._load()

    @property
    def urls(self) -> list[str]:
        """The HTTP URL of every recorded node, running or not."""
        return self._require_state().urls

    def live_urls(self) -> list[str]:
        """The HTTP URLs of the nodes whose process runs now."""
        return [n.url for n in self._require_state().nodes if n.alive()]

    def status(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """`{"url", "status", "nodes", "version", ...}`. `status` is the cluster health, or "stopped"
        (nothing recorded), "dead" (recorded, no process left) or "unreachable" (running, no answer)."""
        state = self._load()
        if state is None:
            return {"url": None, "status": "stopped", "nodes": 0, "version": None}
        running = [n for n in state.nodes if n.alive()]
        summary: dict[str, Any] = {
            "url": state.url,
            "urls": state.urls,
            "cluster_name": state.cluster_name,
            "pids": [n.pid for n in running],
            "expected_nodes": len(state.nodes),
            "heap": state.heap,
        }
        if not running:
            return summary | {"status": "dead", "nodes": 0, "version": None}
        try:
            url = running[0].url
            health = http_json(url, "/_cluster/health", timeout_s)
            versions = sorted(
                {
                    n["version"]
                    for n in http_json(url, "/_nodes?filter_path=nodes.*.version", timeout_s)["nodes"].values()
                }
            )
        except BackendUnavailableError:
            return summary | {"status": "unreachable", "nodes": len(running), "version": None}
        return summary | {
            "url": url,
            "status": health["status"],
            "nodes": health["number_of_nodes"],
            "version": ", ".join(versions),
        }

    # ---------------------------------------------------------------- internals

    def _plan(self, nodes: int, http_port: int | None, heap: str) -> ClusterState:
        # Without a port, the last start's ports when they are free: workers and `serve` keep their URL.
        chosen = [http_port + i for i in range(nodes)] if http_port is not None else remembered_ports(self.root, nodes)
        if chosen is not None:
            http_ports = chosen
            busy = [p for p in http_ports if port_in_use(p)]
            if busy:
                raise ConfigurationError(
                    f"port(s) {busy} in use: pick another --http-port, or leave it out to use free ports"
                )
            transport_ports = [p for p in free_ports(nodes + len(http_ports)) if p not in http_ports][:nodes]
        else:
            ports = free_ports(2 * nodes)
            http_ports, transport_ports = ports[:nodes], ports[nodes:]
        # One folder per cluster size: a single node's data cannot join a three-node cluster.
        topology = "single" if nodes == 1 else f"cluster{nodes}"
        name = f"jointspace-{topology}"
        return ClusterState(
            cluster_name=name,
            heap=heap,
            started_at=time.time(),
            nodes=[
                NodeState(
                    name=f"es{i + 1:02d}",
                    http_port=http_ports[i],
                    transport_port=transport_ports[i],
                    dir=str(self.root / topology / f"es{i + 1:02d}"),
                )
                for i in range(nodes)
            ],
        )

    def _node_settings(self, state: ClusterState, node: NodeState) -> dict[str, str]:
        settings = {
            "path.home": node.dir,
            "path.data": str(Path(node.dir) / "data"),
            "path.logs": str(Path(node.dir) / "logs"),
            "cluster.name": state.cluster_name,
            "node.name": node.name,
            "network.host": HOST,
            "http.port": str(node.http_port),
            "transport.port": str(node.transport_port),
            "logger.level": "INFO",
            # Local development and tests only: deleting by wildcard is convenient, and a full
            # developer disk must not silently turn indices read-only or leave replicas unassigned.
            "action.destructive_requires_name": "false",
            "cluster.routing.allocation.disk.threshold_enabled": "false",
            # Where `jointspace backup` may put snapshot repositories (a static node setting).
            "path.repo": self.settings.es_local_path_repo,
        }
        if len(state.nodes) == 1:
            settings["discovery.type"] = "single-node"
        else:
            settings["discovery.seed_hosts"] = ",".join(f"{HOST}:{n.transport_port}" for n in state.nodes)
            settings["cluster.initial_master_nodes"] = ",".join(n.name for n in state.nodes)
        return settings

    def _spawn(self, java: str, build: es_launcher.LauncherBuild, state: ClusterState, node: NodeState) -> None:
        node_dir = Path(node.dir)
        node_dir.mkdir(parents=True, exist_ok=True)
        node.ready_path.unlink(missing_ok=True)
        command = es_launcher.java_command(
            java, build, state.heap, node_dir, node.ready_path, self._node_settings(state, node), self.owner_pid
        )
        with node.log_path.open("a") as log:
            log.write(f"\n==== jointspace: starting {node.name} at {time.strftime('%Y-%m-%dT%H:%M:%S')} ====\n")
            log.flush()
            # Own session: the node outlives `jointspace es start` and ignores the terminal's Ctrl-C.
            process = subprocess.Popen(
                command,
                cwd=node_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        node.pid = process.pid

    def _wait_healthy(self, state: ClusterState, timeout_s: float, wait_for: str = "yellow") -> str:
        deadline = time.monotonic() + timeout_s
        wanted = len(state.nodes)
        last = "no answer yet"
        while True:
            for node in state.nodes:
                if not node.alive():
                    raise BackendUnavailableError(
                        f"Elasticsearch node {node.name} exited while starting; last lines of {node.log_path}:\n"
                        f"{log_tail(node.log_path)}"
                    )
            try:
                health = http_json(
                    state.url,
                    f"/_cluster/health?wait_for_nodes={wanted}&wait_for_status={wait_for}&timeout=1s&master_timeout=1s",
                    timeout_s=5,
                    accept_statuses=(408, 503),
                )
                last = f"status {health.get('status')}, {health.get('number_of_nodes')} of {wanted} nodes"
                if (
                    health.get("number_of_nodes") == wanted
                    and _HEALTH_RANK.get(health.get("status", ""), -1) >= _HEALTH_RANK[wait_for]
                ):
                    return str(health["status"])
            except BackendUnavailableError as exc:
                last = str(exc)
            if time.monotonic() >= deadline:
                tails = "\n".join(f"--- {n.log_path}:\n{log_tail(n.log_path, 15)}" for n in state.nodes)
                raise BackendUnavailableError(
                    f"Elasticsearch at {state.url} was not {wait_for} within {timeout_s:.0f}s ({last}):\n{tails}"
                )
            time.sleep(0.5)

    def _stop_nodes(self, nodes: list[NodeState], grace_s: float) -> None:
        # SIGTERM all first, so that the nodes shut down in parallel rather than one after another.
        for node in nodes:
            if node.pid is not None and node.alive():
                try:
                    os.kill(node.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for node in nodes:
            if node.pid is not None:
                terminate(node.pid, grace_s, marker=f"-Epath.home={node.dir}")

    def _load(self) -> ClusterState | None:
        data = read_json(self.state_file)
        return ClusterState.from_json(data) if data else None

    def _running_state(self) -> ClusterState | None:
        """The recorded cluster if all its nodes run; a partly dead one is stopped and forgotten."""
        state = self._load()
        if state is None:
            return None
        if all(n.alive() for n in state.nodes):
            return state
        self._stop_nodes(state.nodes, grace_s=self.settings.es_local_stop_timeout_s)
        self.state_file.unlink(missing_ok=True)
        return None

    def _require_state(self) -> ClusterState:
        state = self._load()
        if state is None:
            raise ConfigurationError(f"no local Elasticsearch recorded under {self.root}: run `jointspace es start`")
        return state


def http_json(
    base_url: str, path: str, timeout_s: float = 5.0, accept_statuses: tuple[int, ...] = ()
) -> dict[str, Any]:
    """GET `base_url + path` as JSON with the standard library (keeps `jointspace es status` light).

    Raises BackendUnavailableError when the node does not answer or answers an error not in `accept_statuses`.
    """
    try:
        with urllib.request.urlopen(base_url + path, timeout=timeout_s) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer
    except urllib.error.HTTPError as exc:
        if exc.code in accept_statuses:
            refused: dict[str, Any] = json.loads(exc.read() or b"{}")
            return refused
        raise BackendUnavailableError(f"{base_url}{path} answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError, json.JSONDecodeError) as exc:
        raise BackendUnavailableError(f"{base_url} does not answer: {exc}") from exc
