"""The project's own redis-server: real process, real RESP, stopped and restarted on the same port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from jointspace.errors import ConfigurationError
from jointspace.services.redis_local import LocalRedis

CLI = [sys.executable, "-c", "from jointspace.cli import main; main()"]


def test_redis_answers_and_keeps_an_append_only_file(redis_url: str, redis_server: LocalRedis) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.ping() is True
    client.set("jointspace:test", "1")
    assert client.get("jointspace:test") == b"1"
    config = client.config_get("save") | client.config_get("appendonly") | client.config_get("appendfsync")
    assert config == {"save": "", "appendonly": "yes", "appendfsync": "everysec"}
    client.close()


def test_start_is_idempotent(redis_server: LocalRedis) -> None:
    before = redis_server.status()
    state, already = redis_server.start()
    assert already is True
    assert (state.port, state.pid) == (before["port"], before["pid"])


def test_stop_then_restart_on_the_same_port(redis_url: str, redis_server: LocalRedis) -> None:
    client = redis.Redis.from_url(redis_url)
    client.set("jointspace:survives", "yes")
    port = redis_server.status()["port"]

    assert redis_server.stop() is True
    assert redis_server.status()["status"] == "stopped"
    with pytest.raises(redis.ConnectionError):
        client.ping()

    state, already = redis_server.start(port=port)
    assert already is False
    assert state.port == port
    # The same client reconnects to the same URL, and the append-only file brought the key back
    # (dead letters, saved searches and queued batches live in this Redis).
    assert client.ping() is True
    assert client.get("jointspace:survives") == b"yes"
    client.close()


def test_a_start_without_port_comes_back_on_the_last_one(tmp_path: Path) -> None:
    service = LocalRedis(tmp_path / "redis")
    first, _ = service.start()
    try:
        assert service.stop() is True
        again, already = service.start()
        assert already is False
        assert again.port == first.port == service.last_port()
    finally:
        service.stop()


def test_restart_keeps_the_port_while_running(redis_url: str, redis_server: LocalRedis) -> None:
    old = redis_server.status()
    new = redis_server.restart()
    assert new.port == old["port"] and new.pid != old["pid"]
    assert redis.Redis.from_url(redis_url).ping() is True


def test_missing_redis_server_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigurationError, match="apt-get install redis-server"):
        LocalRedis(tmp_path / "redis").start()


def test_cli_start_status_stop(tmp_path: Path) -> None:
    env = os.environ | {"JOINTSPACE_HOME": str(tmp_path)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, "redis", *args], capture_output=True, text=True, env=env, timeout=60)

    stopped = cli("status", "--json")
    assert stopped.returncode == 1 and json.loads(stopped.stdout)["status"] == "stopped"
    started = cli("start")
    try:
        assert started.returncode == 0, started.stderr
        url = started.stdout.strip().removeprefix("export JOINTSPACE_BROKER_URL=")
        assert redis.Redis.from_url(url).ping() is True
        status = json.loads(cli("status", "--json").stdout)
        assert status["status"] == "running" and status["url"] == url
    finally:
        assert cli("stop").stdout.strip() == "redis stopped"
    assert json.loads(cli("status", "--json").stdout)["status"] == "stopped"
