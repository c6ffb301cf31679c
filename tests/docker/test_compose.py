"""The compose files validate offline with Debian's docker-compose and describe a deployment that scales.

No container engine runs here or in CI: this checks the files, not the containers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def _config(*files: str) -> dict:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose is not installed: run scripts/setup.sh (apt-get install docker-compose)")
    args = [exe, "--env-file", str(DOCKER / ".env.example")]
    for f in files:
        args += ["-f", str(DOCKER / f)]
    check = subprocess.run(args + ["config", "-q"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    # `config` prints YAML; PyYAML ships with docker-compose's own dependencies.
    import yaml

    out = subprocess.run(args + ["config"], capture_output=True, text=True, check=True).stdout
    return yaml.safe_load(out)


def _targets(volumes: list) -> set[str]:
    """Mount targets, whether docker-compose prints volumes long (dicts) or short ("src:target:mode")."""
    return {v["target"] if isinstance(v, dict) else v.split(":")[1] for v in volumes}


def test_compose_has_three_node_cluster_redis_api_and_scalable_worker() -> None:
    config = _config("compose.yml")
    services = config["services"]
    assert {"es01", "es02", "es03", "redis", "api", "worker"} <= set(services)
    for node in ("es01", "es02", "es03"):
        env = services[node]["environment"]
        assert env["discovery.seed_hosts"] == "es01,es02,es03"
        assert "8.19" in services[node]["image"]
        assert "healthcheck" in services[node]
        # `jointspace backup` snapshots into a folder every node and the api container share.
        assert env["path.repo"] == "/backups"
        assert "/backups" in _targets(services[node]["volumes"])
    assert "/backups" in _targets(services["api"]["volumes"])
    worker = services["worker"]
    # A fixed name or host port would make `--scale worker=N` fail.
    assert "container_name" not in worker and "ports" not in worker
    assert worker["environment"]["JOINTSPACE_BROKER_URL"].startswith("redis://")
    assert services["api"]["healthcheck"]["test"]


def test_gpu_override_reserves_one_gpu_per_worker() -> None:
    config = _config("compose.yml", "compose.gpu.yml")
    devices = config["services"]["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert config["services"]["worker"]["environment"]["JOINTSPACE_DEVICE"] == "cuda"
    json.dumps(config)  # plain data all the way down
