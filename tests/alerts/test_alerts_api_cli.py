"""The contracts: HTTP /alerts (writes need X-API-Key) and `jointspace alerts` (with --json), on the
embedded store, in-process, with the histogram bundle."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from jointspace.api.app import create_app
from jointspace.api.container import build_container

from tests.alerts.alert_support import KEY, api_client, colour_ids, corpus_with_prefix, in_process_settings
from tests.workers.histogram_bundle import FACTORY, IMPORT_ROOT

JOINTSPACE = shutil.which("jointspace") or "jointspace"
DEAD_WEBHOOK = "http://127.0.0.1:9/hook"  # the discard port: refused at once


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with api_client(in_process_settings(tmp_path / "home", tmp_path)) as client:
        yield client


def _posts(corpus) -> list[dict]:
    rows = [json.loads(line) for line in corpus.jsonl.read_text().splitlines()]
    for row in rows:
        row["image"] = str(corpus.jsonl.parent / row["image"])
    return rows


def test_http_alerts_save_list_match_and_remove(tmp_path: Path, client: TestClient) -> None:
    key = {"X-API-Key": KEY}
    old, new = corpus_with_prefix(tmp_path / "old", 6, "a"), corpus_with_prefix(tmp_path / "new", 12, "b")
    assert client.post("/posts", json=_posts(old), headers=key).status_code == 200

    body = {"q": "red", "min_score": 0.9, "name": "red ones", "city": ["London", "tokyo"]}
    assert client.post("/alerts", json=body).status_code == 401  # a write without the key
    assert client.post("/alerts", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
    bad = client.post("/alerts", json={"q": "(red", "min_score": 0.5}, headers=key)
    assert bad.status_code == 400 and bad.json()["position"] == 4
    assert "min_score" in client.post("/alerts", json={"q": "red"}, headers=key).json()["message"]
    assert client.post("/alerts", json={"q": "red", "min_score": 3}, headers=key).status_code == 400
    assert (
        client.post("/alerts", json={"q": "red", "min_score": 0.9, "webhook": "ftp://x"}, headers=key).status_code
        == 400
    )
    unknown = client.post("/alerts", json={"q": "purple", "min_score": 0.9}, headers=key)
    assert unknown.status_code == 400 and "purple" in unknown.json()["message"]

    saved = client.post("/alerts", json=body, headers=key)
    assert saved.status_code == 201, saved.text
    alert = saved.json()
    assert alert["id"] and alert["name"] == "red ones" and alert["filters"] == "city:london,tokyo"
    listed = client.get("/alerts").json()["alerts"]
    assert [a["id"] for a in listed] == [alert["id"]] and listed[0]["matches"] == 0

    # Saved again as it was (a setup script run twice): the one saved before, 200, no second copy.
    again = client.post("/alerts", json=body, headers=key)
    assert again.status_code == 200 and again.json() == alert
    other_name = client.post("/alerts", json={**body, "name": "red ones too"}, headers=key)
    assert other_name.status_code == 201 and other_name.json()["id"] != alert["id"]
    # Unnamed (the page's "Watch this query"): each caller's own, so one's "Stop" ends only theirs.
    unnamed = {k: v for k, v in body.items() if k != "name"}
    watches = [client.post("/alerts", json=unnamed, headers=key) for _ in range(2)]
    assert [w.status_code for w in watches] == [201, 201] and watches[0].json()["id"] != watches[1].json()["id"]
    for extra in (other_name, *watches):
        assert client.delete(f"/alerts/{extra.json()['id']}", headers=key).status_code == 200

    assert client.post("/posts", json=_posts(new), headers=key).status_code == 200
    matches = client.get(f"/alerts/{alert['id']}/matches").json()
    expected = colour_ids(new, "red", "london") | colour_ids(new, "red", "tokyo")
    assert expected and {m["id"] for m in matches["matches"]} == expected
    assert all(
        m["score"] == pytest.approx(1.0, abs=1e-5) and m["thumbnail_url"].endswith("/thumbnail")
        for m in matches["matches"]
    )
    assert matches["alert"]["matches"] == len(expected)
    assert client.get(f"/alerts/{alert['id']}/matches", params={"since": "2999-01-01"}).json()["matches"] == []
    # An unreadable `since` is a 422 of the error model, as every other bad parameter, in the words
    # of the other date errors.
    soon = client.get(f"/alerts/{alert['id']}/matches", params={"since": "soon"})
    assert soon.status_code == 422 and set(soon.json()) == {"error", "message", "position", "suggestions"}
    assert soon.json()["error"] == "validation"
    assert soon.json()["message"].startswith("since: 'soon' is neither a date nor a duration: write it as 2018-01-31")
    assert client.get(f"/alerts/{alert['id']}/matches", params={"since": "15m"}).status_code == 200
    assert client.get(f"/alerts/{alert['id']}/matches", params={"since": "2018-01-31t12:00z"}).status_code == 200
    bad_cursor = client.get(f"/alerts/{alert['id']}/events", params={"after": "not-a-cursor"})
    assert bad_cursor.status_code == 400 and "cursor" in bad_cursor.json()["message"]

    assert client.delete(f"/alerts/{alert['id']}").status_code == 401
    assert client.delete(f"/alerts/{alert['id']}", headers=key).json() == {"id": alert["id"], "deleted": True}
    assert client.get(f"/alerts/{alert['id']}/matches").status_code == 404
    assert client.get(f"/alerts/{alert['id']}/events").status_code == 404
    assert client.delete(f"/alerts/{alert['id']}", headers=key).status_code == 404


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([JOINTSPACE, *args], env=env, capture_output=True, text=True, timeout=120)


def test_cli_alerts_add_list_matches_remove(tmp_path: Path) -> None:
    from tests.workers.corpus import TEST_MAX_BYTES, TEST_MAX_PIXELS

    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    env.update(
        JOINTSPACE_HOME=str(tmp_path / "home"),
        JOINTSPACE_BUNDLE_FACTORY=FACTORY,
        JOINTSPACE_IMAGE_MAX_PIXELS=str(TEST_MAX_PIXELS),
        JOINTSPACE_IMAGE_MAX_BYTES=str(TEST_MAX_BYTES),
        PYTHONPATH=os.pathsep.join(filter(None, [IMPORT_ROOT, os.environ.get("PYTHONPATH")])),
    )
    old, new = corpus_with_prefix(tmp_path / "old", 6, "a"), corpus_with_prefix(tmp_path / "new", 12, "b")
    assert _run(env, "ingest", str(old.jsonl), "--quiet").returncode == 0

    wrong = _run(env, "alerts", "add", "(red", "--min-score", "0.9")
    assert wrong.returncode == 2 and "^" in wrong.stderr
    as_json = _run(env, "alerts", "add", "red", "--json")
    assert as_json.returncode == 2 and json.loads(as_json.stdout)["error"] == "query"
    assert "min_score" in json.loads(as_json.stdout)["message"]
    added = _run(env, "alerts", "add", "red", "--min-score", "0.9", "--json")
    assert added.returncode == 0, added.stderr
    alert = json.loads(added.stdout)
    assert alert["id"] and alert["mode"] == "semantic" and alert["min_score"] == 0.9
    text = _run(env, "alerts", "add", "blue", "--mode", "keyword", "--name", "blue words")
    assert text.returncode == 0 and "blue words" in text.stdout
    # A webhook nobody answers (nothing listens on the discard port): its deliveries stay pending,
    # and the ingest that leaves them says so.
    silent = _run(env, "alerts", "add", "blue", "--mode", "keyword", "--name", "silent", "--webhook", DEAD_WEBHOOK)
    assert silent.returncode == 0, silent.stderr

    same = _run(env, "alerts", "add", "blue", "--mode", "keyword", "--name", "blue words", "--json")
    assert same.returncode == 0 and "saved before" in same.stderr
    assert json.loads(same.stdout)["name"] == "blue words"

    ingested = _run(env, "ingest", str(new.jsonl), "--quiet", "--json")
    assert ingested.returncode == 0, ingested.stderr
    assert json.loads(ingested.stdout)["webhooks_pending"] == 2  # the two blue posts, for "silent"
    listed = json.loads(_run(env, "alerts", "list", "--json").stdout)["alerts"]
    assert {a["name"]: a["matches"] for a in listed} == {"red": 2, "blue words": 2, "silent": 2}
    assert len(listed) == 3
    silent_id = next(a["id"] for a in listed if a["name"] == "silent")
    assert _run(env, "alerts", "remove", silent_id).returncode == 0
    found = json.loads(_run(env, "alerts", "matches", alert["id"], "--json").stdout)
    assert found["alert"]["id"] == alert["id"]
    assert {m["id"] for m in found["matches"]} == colour_ids(new, "red")
    assert all(set(m) >= {"id", "score", "caption", "city", "matched_at"} for m in found["matches"])
    # GET /alerts/{id}/matches over the same home writes every time as the CLI does: UTC with a `Z`.
    settings = in_process_settings(tmp_path / "home", tmp_path)
    container = build_container(settings)
    try:
        with TestClient(create_app(settings, container)) as client:
            served = client.get(f"/alerts/{alert['id']}/matches").json()
    finally:
        container.close()
    times = [found["alert"]["created_at"]] + [m[f] for m in found["matches"] for f in ("created_at", "matched_at")]
    assert all(t.endswith("Z") and "+" not in t for t in times), times
    assert found["alert"]["created_at"] == served["alert"]["created_at"] == alert["created_at"]
    assert {m["id"]: (m["created_at"], m["matched_at"]) for m in found["matches"]} == {
        m["id"]: (m["created_at"], m["matched_at"]) for m in served["matches"]
    }
    later = json.loads(_run(env, "alerts", "matches", alert["id"], "--since", "2999-01-01", "--json").stdout)
    assert later["matches"] == []
    shown = _run(env, "alerts", "matches", alert["id"])
    assert shown.returncode == 0 and shown.stdout.count("a red picture") == 2

    removed = _run(env, "alerts", "remove", alert["id"], "--json")
    assert removed.returncode == 0 and json.loads(removed.stdout) == {"id": alert["id"], "deleted": True}  # as DELETE
    assert _run(env, "alerts", "remove", alert["id"]).returncode == 2
    gone = _run(env, "alerts", "matches", alert["id"], "--json")
    assert gone.returncode == 2 and alert["id"] in json.loads(gone.stdout)["message"]
    assert [a["name"] for a in json.loads(_run(env, "alerts", "list", "--json").stdout)["alerts"]] == ["blue words"]
