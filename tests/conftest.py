"""Session fixtures for the real services: Elasticsearch 8.19.21 (one node, and a lazy 3-node cluster)
and Redis, started by the project itself (jointspace.services) and stopped when the session ends.

A service that cannot start fails the tests that need it (pytest.fail): it never skips them.
`JOINTSPACE_TEST_ES_URL` reuses a running node for `es_url` (quicker local iteration); CI leaves it
unset. `JOINTSPACE_TEST_HOME` (set by scripts/test.sh) holds the services' folders, else a pytest
temporary folder does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from jointspace.errors import JointspaceError
from jointspace.services.elasticsearch_local import LocalElasticsearch, http_json
from jointspace.services.redis_local import LocalRedis
from jointspace.settings import Settings

SINGLE_NODE_HEAP = os.environ.get("JOINTSPACE_TEST_ES_HEAP", "512m")
# Three JVMs on a 2-core CI machine: keep each small.
CLUSTER_NODE_HEAP = os.environ.get("JOINTSPACE_TEST_ES_CLUSTER_HEAP", "384m")
START_TIMEOUT_S = float(
    os.environ.get("JOINTSPACE_TEST_ES_START_TIMEOUT_S", Settings.model_fields["es_local_start_timeout_s"].default)
)

# What the session talked to, for the terminal summary.
_SERVICES_SEEN: dict[str, str] = {}


def _services_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = os.environ.get("JOINTSPACE_TEST_HOME")
    if base:
        return Path(base) / "services"
    return tmp_path_factory.getbasetemp() / "services"


def _announce(config: pytest.Config, line: str) -> None:
    """Writes `line` to the terminal now, past pytest's output capture (fixtures run captured)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.ensure_newline()
        reporter.write_line(line, cyan=True)


def _es_version(url: str) -> str:
    nodes = http_json(url, "/_nodes?filter_path=nodes.*.version")["nodes"]
    return ", ".join(sorted({n["version"] for n in nodes.values()}))


# ---------------------------------------------------------------- Elasticsearch


@pytest.fixture(scope="session")
def _es_single(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, LocalElasticsearch | None]]:
    """(URL, handle) of the session's single node; the handle is None when JOINTSPACE_TEST_ES_URL is reused."""
    external = os.environ.get("JOINTSPACE_TEST_ES_URL")
    if external:
        url = external.rstrip("/")
        try:
            version = _es_version(url)
        except JointspaceError as exc:
            pytest.fail(f"JOINTSPACE_TEST_ES_URL={url} does not answer: {exc}", pytrace=False)
        _SERVICES_SEEN["es"] = f"Elasticsearch {version} at {url} (reused: JOINTSPACE_TEST_ES_URL)"
        _announce(request.config, _SERVICES_SEEN["es"])
        yield url, None
        return
    service = LocalElasticsearch(_services_root(tmp_path_factory) / "es", owner_pid=os.getpid())
    try:
        started = service.start(nodes=1, heap=SINGLE_NODE_HEAP, timeout_s=START_TIMEOUT_S)
        version = _es_version(started.state.url)
    except JointspaceError as exc:
        service.stop(grace_s=10)
        pytest.fail(f"the local Elasticsearch node could not start: {exc}", pytrace=False)
    _SERVICES_SEEN["es"] = (
        f"Elasticsearch {version}: local node at {started.state.url}, {started.health} in {started.seconds:.1f}s"
    )
    _announce(request.config, _SERVICES_SEEN["es"])
    try:
        yield started.state.url, service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def es_url(_es_single: tuple[str, LocalElasticsearch | None]) -> str:
    """The URL of a single real Elasticsearch node, started once per session (about 10-25 s)."""
    return _es_single[0]


@pytest.fixture(scope="session")
def _es_cluster_session(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalElasticsearch]:
    service = LocalElasticsearch(_services_root(tmp_path_factory) / "es-cluster", owner_pid=os.getpid())
    try:
        started = service.start(nodes=3, heap=CLUSTER_NODE_HEAP, timeout_s=START_TIMEOUT_S)
        version = _es_version(started.state.url)
    except JointspaceError as exc:
        service.stop(grace_s=10)
        pytest.fail(f"the local 3-node Elasticsearch cluster could not start: {exc}", pytrace=False)
    _SERVICES_SEEN["es_cluster"] = (
        f"Elasticsearch {version}: 3-node cluster at {', '.join(started.state.urls)}, "
        f"{started.health} in {started.seconds:.1f}s"
    )
    _announce(request.config, _SERVICES_SEEN["es_cluster"])
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def es_cluster(_es_cluster_session: LocalElasticsearch) -> Iterator[LocalElasticsearch]:
    """A real 3-node cluster (started on first use, once per session): `.urls`, `.live_urls()`,
    `.kill_node(i)` (SIGKILL), `.restart_node(i)`. Nodes a test killed are restarted after it."""
    yield _es_cluster_session
    try:
        _es_cluster_session.ensure_all_running(timeout_s=START_TIMEOUT_S)
    except JointspaceError as exc:
        pytest.fail(f"could not bring the cluster back to three nodes after the test: {exc}", pytrace=False)


# ---------------------------------------------------------------- Redis


@pytest.fixture(scope="session")
def _redis_session(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    service = LocalRedis(_services_root(tmp_path_factory) / "redis")
    try:
        state, _ = service.start()
    except JointspaceError as exc:
        pytest.fail(f"the local redis-server could not start: {exc}", pytrace=False)
    _SERVICES_SEEN["redis"] = f"Redis at {state.url}"
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def redis_url(_redis_session: LocalRedis) -> str:
    """`redis://127.0.0.1:PORT/0` of a real redis-server (no persistence), one per session."""
    return _redis_session.status()["url"]


@pytest.fixture
def redis_server(_redis_session: LocalRedis) -> Iterator[LocalRedis]:
    """The session's redis-server as a handle: `.stop()`, `.start(port=...)`, `.restart()` (same port),
    `.status()`. If a test leaves it stopped, it is started again on the same port afterwards."""
    port = _redis_session.status()["port"]
    if port is None:
        pytest.fail(f"the session's redis-server under {_redis_session.root} is not recorded", pytrace=False)
    yield _redis_session
    try:
        _redis_session.start(port=port)
    except JointspaceError as exc:
        pytest.fail(f"could not start redis again on port {port} after the test: {exc}", pytrace=False)


# ---------------------------------------------------------------- reporting and markers


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Mark by fixture so that `-m "not cluster"` and friends work without every author remembering the marker.
    marks = {"es_url": "es", "_es_single": "es", "es_cluster": "cluster", "redis_url": "redis", "redis_server": "redis"}
    for item in items:
        for fixture, mark in marks.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(getattr(pytest.mark, mark))


def pytest_report_header(config: pytest.Config) -> list[str]:
    redis = shutil.which("redis-server")
    redis_version = (
        subprocess.run([redis, "--version"], capture_output=True, text=True).stdout.split(" v=")[-1].split()[0]
        if redis
        else "not installed"
    )
    es = (
        os.environ.get("JOINTSPACE_TEST_ES_URL")
        or "local Elasticsearch 8.19.21 launcher (docker/es-launcher), started on first use"
    )
    return [f"services: elasticsearch: {es}; redis-server {redis_version}"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _SERVICES_SEEN:
        terminalreporter.section("services")
        for line in _SERVICES_SEEN.values():
            terminalreporter.write_line(line)
