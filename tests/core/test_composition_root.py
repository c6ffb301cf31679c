"""Settings reach library code as an argument: `get_settings()` (the environment, read once) is
called only by the composition root (`jointspace/app.py`) and the entry points (the CLI)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TREE = ["jointspace", "api", "backends", "encoders", "ingest", "query", "workers", "datasets"]
# The composition root, and the entry points: each CLI command reads the settings once. The API's
# start-up and the Celery worker's start-up read them through jointspace.app.settings_from_environment.
ALLOWED = re.compile(r"^jointspace/(app\.py|settings\.py|cli/[a-z_]+\.py)$")
CALL = re.compile(r"(?<!def )\bget_settings\(")


def _sources() -> list[Path]:
    return sorted(p for folder in TREE for p in (ROOT / folder).rglob("*.py"))


def callers() -> dict[str, list[int]]:
    """Each file that calls `get_settings(` or imports jointspace.settings.get_settings (under any
    name), with the line numbers."""
    found: dict[str, list[int]] = {}
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT).as_posix()
        lines = [n for n, line in enumerate(text.splitlines(), 1) if CALL.search(line)]
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.module == "jointspace.settings":
                lines += [node.lineno for alias in node.names if alias.name == "get_settings"]
            elif isinstance(node, ast.Attribute) and node.attr == "get_settings":
                lines.append(node.lineno)
        if lines:
            found[rel] = sorted(set(lines))
    return found


def test_get_settings_is_called_only_by_the_composition_root_and_the_entry_points() -> None:
    found = callers()
    # The scan sees what it must: the root and a CLI command do call it.
    assert "jointspace/app.py" in found and "jointspace/cli/search.py" in found, sorted(found)
    assert len(_sources()) > 100
    stray = {path: lines for path, lines in found.items() if not ALLOWED.match(path)}
    assert not stray, f"get_settings() outside the composition root and the entry points: {stray}"


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**clean, **env}, timeout=120
    )


def test_celery_app_and_tasks_read_no_settings_at_import() -> None:
    """Settings that cannot even be read (production without an API key) do not stop the import;
    the app reads them when Celery's worker start-up first looks at its configuration."""
    done = _python(
        "import jointspace.workers.tasks\n"
        "from jointspace.workers.celery_app import app\n"
        "try:\n"
        "    app.conf.jointspace_settings\n"
        "except ValueError as exc:\n"
        "    print('read at start-up:', 'JOINTSPACE_API_KEY' in str(exc))\n",
        JOINTSPACE_ENVIRONMENT="production",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "read at start-up: True", done.stdout


def test_a_task_takes_its_retry_policy_from_the_settings_of_its_app() -> None:
    done = _python(
        "from jointspace.workers.tasks import ingest_batch, deliver_alert\n"
        "print(ingest_batch.max_retries, ingest_batch.retry_backoff_max, deliver_alert.max_retries)\n",
        JOINTSPACE_TASK_MAX_RETRIES="4",
        JOINTSPACE_RETRY_BACKOFF_MAX_S="7",
        JOINTSPACE_ALERTS_WEBHOOK_MAX_RETRIES="2",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["4", "7", "3"]


def test_a_bundle_factory_is_an_entry_point_name_or_its_written_out_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One plugin mechanism: JOINTSPACE_BUNDLE_FACTORY loads like every other entry point."""
    from jointspace.app import open_bundle
    from jointspace.errors import ConfigurationError
    from jointspace.settings import Settings

    with pytest.raises(ConfigurationError, match=r"JOINTSPACE_BUNDLE_FACTORY='nosuch': no bundle named 'nosuch'"):
        open_bundle(Settings(home=tmp_path, bundle_factory="nosuch"))
    with pytest.raises(ConfigurationError, match=r"No module named 'nosuch_module'"):
        open_bundle(Settings(home=tmp_path, bundle_factory="nosuch_module:make"))
    # A written-out value that resolves: called with the settings; what it makes comes back as is.
    (tmp_path / "my_bundles.py").write_text("def make(settings):\n    return ('made for', settings.home)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert open_bundle(Settings(home=tmp_path, bundle_factory="my_bundles:make")) == ("made for", tmp_path)
