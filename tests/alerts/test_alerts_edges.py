"""Bad and odd input to the saved searches and to `jointspace backup`, from both doors: one-line
errors (never a traceback or a 500), and the same JSON for the same thing from the CLI's `--json`
and the API. Embedded store, in-process, with the histogram bundle."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from jointspace.alerts.records import SavedSearch
from jointspace.alerts.store_sqlite import SqliteAlertStore
from tests.alerts.alert_support import KEY, api_client, in_process_settings
from tests.workers.histogram_bundle import FACTORY, IMPORT_ROOT

JOINTSPACE = shutil.which("jointspace") or "jointspace"
FAR_BACK = "99999999d"  # further back than a datetime reaches
HUGE_CURSOR = "9" * 23  # past SQLite's integers


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with api_client(in_process_settings(tmp_path / "home", tmp_path)) as client:
        yield client


def test_http_alerts_answer_odd_input_with_4xx_errors_that_say_what(client: TestClient) -> None:
    key = {"X-API-Key": KEY}
    saved = client.post("/alerts", json={"q": "red", "min_score": 0.9}, headers=key)
    assert saved.status_code == 201, saved.text
    alert_id = saved.json()["id"]

    # A duration further back than a date can be: every match (there are none yet), not a 500.
    far = client.get(f"/alerts/{alert_id}/matches", params={"since": FAR_BACK})
    assert far.status_code == 200, far.text
    assert far.json()["matches"] == []
    # A cursor past SQLite's integers was a 500 (OverflowError); it is no cursor of this search.
    huge = client.get(f"/alerts/{alert_id}/events", params={"after": HUGE_CURSOR})
    assert huge.status_code == 400 and "cursor" in huge.json()["message"]

    # A saved search refuses `auto`, so a bad min_score does not offer it.
    for bad in (5, "abc"):
        answer = client.post("/alerts", json={"q": "red", "min_score": bad}, headers=key)
        assert answer.status_code == 400 and "auto" not in answer.json()["message"], answer.text
        assert "between -1 and 1" in answer.json()["message"]

    # A webhook with a control character or a space in it is no URL: refused, not failed at every match.
    for url in ("http://127.0.0.1:9/hook\x1b[31m", "http://127.0.0.1:9/a hook"):
        answer = client.post("/alerts", json={"q": "red", "min_score": 0.9, "webhook": url}, headers=key)
        assert answer.status_code == 400 and "webhook" in answer.json()["message"], answer.text

    # A body that is not JSON says so, and where (it read `29: JSON decode error`).
    broken = client.post(
        "/alerts", content=b'{"q": "red", "min_score": 0.9', headers={**key, "Content-Type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.json()["message"].startswith("body: not valid JSON at character 29"), broken.text


def test_sqlite_store_refuses_a_cursor_past_its_integers(tmp_path: Path) -> None:
    store = SqliteAlertStore(tmp_path / "alerts.sqlite3", poll_s=0.05)
    try:
        store.add(SavedSearch("s1", "one", "red", min_score=0.5), {})
        with pytest.raises(ValueError, match="cursor"):
            store.events_after("s1", HUGE_CURSOR, 0.0)
        assert store.events_after("s1", "0", 0.0)[0] == []
    finally:
        store.close()


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    env.update(
        JOINTSPACE_HOME=str(home),
        JOINTSPACE_BUNDLE_FACTORY=FACTORY,
        PYTHONPATH=os.pathsep.join(filter(None, [IMPORT_ROOT, os.environ.get("PYTHONPATH")])),
    )
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([JOINTSPACE, *args], env=env, capture_output=True, text=True, timeout=120)


def test_cli_alerts_json_is_the_apis_json(tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    added = _run(env, "alerts", "add", "red", "--min-score", "0.9", "--json")
    assert added.returncode == 0, added.stderr
    alert = json.loads(added.stdout)
    assert alert["matches"] == 0  # as POST /alerts answers

    found = _run(env, "alerts", "matches", alert["id"], "--json")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["alert"] == alert  # with its number of matches, as /matches
    far = _run(env, "alerts", "matches", alert["id"], "--since", FAR_BACK, "--json")
    assert far.returncode == 0 and json.loads(far.stdout)["matches"] == [], far.stderr

    # A name is somebody's text: the terminal shows its escape sequences, never obeys them.
    named = _run(env, "alerts", "add", "red", "--min-score", "0.9", "--name", "a\x1b]0;title\x07\x1b[2Jb")
    assert named.returncode == 0 and "\x1b" not in named.stdout and "\x07" not in named.stdout, named.stdout
    listed = _run(env, "alerts", "list")
    assert listed.returncode == 0 and "a\ufffd]0;title\ufffd\ufffd[2Jb" in listed.stdout, listed.stdout
    assert "\x1b" not in listed.stdout

    unknown = _run(env, "alerts", "matches", "nope", "--json")
    assert unknown.returncode == 2 and json.loads(unknown.stdout)["error"] == "not_found"  # the API's 404 kind
    removed = _run(env, "alerts", "remove", alert["id"], "--json")
    assert removed.returncode == 0 and json.loads(removed.stdout) == {"id": alert["id"], "deleted": True}
    again = _run(env, "alerts", "remove", alert["id"], "--json")
    assert again.returncode == 2 and json.loads(again.stdout)["error"] == "not_found"


def test_backup_into_a_file_or_below_one_is_a_one_line_error(tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    for folder in (a_file, a_file / "below"):
        done = _run(env, "backup", str(folder))
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and done.stderr.startswith("error: "), done.stderr
        assert str(folder) in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert a_file.read_text() == "not a folder"
