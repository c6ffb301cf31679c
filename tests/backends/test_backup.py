"""`jointspace backup` / `restore` on both backends (the real Elasticsearch node): every post, field,
vector and media root comes back identical; a backup taken while a writer overwrites and adds posts
(and, embedded, compacts) is one consistent snapshot; a home holding another bundle's index refuses
the restore."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from jointspace.backends import open_backend
from jointspace.backends.backup import backup, restore
from jointspace.backends.elasticsearch import ElasticsearchBackend

from jointspace.errors import ModelMismatchError
from jointspace.protocols import SearchBackend
from jointspace.records import Document
from jointspace.settings import Settings
from tests.backends.backend_corpus import DIM, MODEL, city_corpus, doc
from tests.backends.backend_support import drop_alias_indices

BACKENDS = ["embedded", pytest.param("elasticsearch", marks=pytest.mark.es)]
N_POSTS = 600


def home_settings(kind: str, request: pytest.FixtureRequest, home: Path) -> Settings:
    es_url = request.getfixturevalue("es_url") if kind == "elasticsearch" else None
    return Settings(home=home, es_url=es_url, es_index_alias=f"test-backup-{uuid.uuid4().hex[:10]}")


class Homes:
    """Opens backends of several homes and drops / closes them all at the end."""

    def __init__(self, kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.kind, self.request, self.tmp_path = kind, request, tmp_path
        self.opened: list[SearchBackend] = []

    def settings(self, name: str) -> Settings:
        return home_settings(self.kind, self.request, self.tmp_path / name)

    def open(self, settings: Settings, model: str = MODEL, **kwargs: object) -> SearchBackend:
        if settings.es_url:
            backend: SearchBackend = ElasticsearchBackend.open(settings, model, DIM)
        else:
            from jointspace.backends.embedded import EmbeddedBackend

            backend = EmbeddedBackend(settings.embedded_dir, model, DIM, **kwargs)  # type: ignore[arg-type]  # mixed kwargs
        self.opened.append(backend)
        return backend

    def close(self) -> None:
        for backend in self.opened:
            if isinstance(backend, ElasticsearchBackend):
                drop_alias_indices(backend)
            else:
                backend.close()


@pytest.fixture(params=BACKENDS)
def homes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Homes]:
    opened = Homes(request.param, request, tmp_path)
    yield opened
    opened.close()


def snapshot_of(backend: SearchBackend) -> dict[str, tuple[dict, np.ndarray]]:
    backend.refresh()
    return {d.id: (d.post.to_json(), np.asarray(d.vector)) for d in backend.iter_documents()}


def assert_identical(restored: SearchBackend, source: dict[str, tuple[dict, np.ndarray]]) -> None:
    got = snapshot_of(restored)
    assert set(got) == set(source)
    for post_id, (fields, vector) in source.items():
        assert got[post_id][0] == fields, post_id
        assert got[post_id][1].dtype == np.float32 and np.array_equal(got[post_id][1], vector), post_id


def folder_digest(folder: Path) -> dict[str, str]:
    import hashlib

    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def versioned(post_id: str, version: int) -> Document:
    """A post whose vector follows from its id and the version written in its caption."""
    seed = [int.from_bytes(post_id.encode()[:8].ljust(8, b"\0"), "little"), version]
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return doc(post_id, vector / np.linalg.norm(vector), caption=f"version {version}", city="oslo")


def test_round_trip_is_identical(homes: Homes, tmp_path: Path) -> None:
    settings = homes.settings("home-a")
    source = homes.open(settings)
    assert not source.upsert(city_corpus(N_POSTS, DIM)).errors
    source.add_media_roots(["/srv/pictures/summer", "/srv/pictures/winter"])
    uploads = settings.home / "uploads" / "ab"
    uploads.mkdir(parents=True)
    (uploads / "abcdef.png").write_bytes(b"not really a png, but bytes to carry")
    before = snapshot_of(source)

    manifest = backup(settings, tmp_path / "backup", progress=False)
    assert manifest["model"] == MODEL and manifest["dim"] == DIM and manifest["posts"] == N_POSTS
    assert manifest["media_roots"] == ["/srv/pictures/summer", "/srv/pictures/winter"]
    assert manifest["uploads"] == 1
    # A backup folder is finished files only: no SQLite write-ahead log or shared-memory file left open.
    assert not [p.name for p in (tmp_path / "backup").rglob("*") if p.name.endswith(("-wal", "-shm"))]

    target = homes.settings("home-b")
    written = folder_digest(tmp_path / "backup")
    report = restore(target, tmp_path / "backup", progress=False)
    assert report["posts"] == N_POSTS and report["previous"] is None
    assert folder_digest(tmp_path / "backup") == written  # a restore only reads the backup
    restored = homes.open(target)
    assert_identical(restored, before)
    assert restored.media_roots() == ["/srv/pictures/summer", "/srv/pictures/winter"]
    assert (target.home / "uploads" / "ab" / "abcdef.png").read_bytes() == (uploads / "abcdef.png").read_bytes()
    # Searching the restored index gives what the source gives.
    query = before["p42"][1]
    assert [h.post.id for h in restored.knn(query, 5)] == [h.post.id for h in source.knn(query, 5)]


def test_a_restore_leaves_out_a_post_taken_down_after_the_backup(homes: Homes, tmp_path: Path) -> None:
    """The takedown register is not in the backup, and no restore rolls it back."""
    from jointspace.backends.takedown_register import open_takedowns
    from jointspace.ingest.takedown import take_down

    settings = homes.settings("home-a")
    source = homes.open(settings)
    assert not source.upsert(city_corpus(40, DIM)).errors
    assert backup(settings, tmp_path / "backup", progress=False)["posts"] == 40
    register = open_takedowns(settings)
    try:
        assert take_down(settings, source, None, None, register, ["p7"]).deleted == ["p7"]
    finally:
        register.close()
    if homes.kind == "embedded":  # a restore refuses a store held open
        source.close()
        homes.opened.remove(source)

    report = restore(settings, tmp_path / "backup", progress=False)
    assert report["posts"] == 40 and report["withheld"] == 1 and report["previous"]
    restored = homes.open(settings)
    restored.refresh()
    assert restored.get("p7") is None and restored.count() == 39
    if homes.kind == "embedded":  # a rollback, too, refuses a store held open
        restored.close()
        homes.opened.remove(restored)

    # `jointspace rollback` finds the index the restore replaced (on Elasticsearch too: the restore
    # marks it retired, as a reindex does), and the restored one is kept in its turn.
    from jointspace.workers.reindex import rollback

    rolled = rollback(settings)
    assert rolled["withheld"] == 0 and rolled["retired_index"] is not None
    if homes.kind == "elasticsearch":
        assert rolled["live_index"] == report["previous"]
    else:  # the live folder keeps its name: the one the restore moved aside is moved back
        assert rolled["live_index"] == str(settings.embedded_dir) and not Path(report["previous"]).exists()

    # The register travels with backups: a new home that restores a later backup, then the older
    # one, still leaves p7 out.
    assert backup(settings, tmp_path / "later", progress=False)["takedowns"] == 1
    fresh = homes.settings("home-b")
    assert restore(fresh, tmp_path / "later", progress=False)["takedowns"] == 1
    register = open_takedowns(fresh)
    try:
        assert register.among(["p7", "p8"]) == {"p7"}
    finally:
        register.close()
    older = restore(fresh, tmp_path / "backup", progress=False)
    assert older["posts"] == 40 and older["withheld"] == 1 and older["takedowns"] == 0
    again = homes.open(fresh)
    again.refresh()
    assert again.get("p7") is None and again.count() == 39


def write_bundle(folder: Path, name: str = MODEL) -> Path:
    """A bundle folder as `jointspace train` leaves one (a manifest and weights), for the backup to
    carry; no model in it is loaded here."""
    from jointspace.encoders.bundle import write_manifest, zeroshot_manifest

    write_manifest(folder, zeroshot_manifest(name=name, dim=DIM))
    (folder / "head.pt").write_bytes(np.random.default_rng(7).bytes(4096))
    return folder


def test_the_bundle_that_built_the_index_travels_with_the_backup(homes: Homes, tmp_path: Path) -> None:
    """A restore into a home without that bundle installs it and makes it the default, so the
    restored index can be searched there; a home that has it, or chose another, is left as it is."""
    import shutil

    from jointspace.encoders.bundle import find_bundle_dir, set_latest
    from jointspace.encoders.bundle_backup import ModelBundlePart, default_bundle_name

    from jointspace.errors import ConfigurationError

    settings = homes.settings("home-a")
    bundle = write_bundle(settings.models_dir / "test-model-0123abcd")
    # A cache being written on first use (jointspace.atomic_write's temporary name): not carried.
    (bundle / "classes.npy.k3x_9q2a.4242.npy").write_bytes(b"a cache half written")
    set_latest(bundle, settings)
    source = homes.open(settings)
    assert not source.upsert(city_corpus(30, DIM)).errors

    manifest = backup(settings, tmp_path / "backup", progress=False, parts=[ModelBundlePart(settings)])
    assert manifest["model_bundle"] == 1
    carried = folder_digest(tmp_path / "backup" / "model_bundle")
    assert carried == {k: v for k, v in folder_digest(bundle).items() if k != "classes.npy.k3x_9q2a.4242.npy"}
    assert set(carried) == {"manifest.json", "head.pt"}

    # A new home (whose default is the shipped bundle) gets the bundle and searches with it.
    fresh = homes.settings("home-b")
    assert default_bundle_name(fresh) != MODEL
    report = restore(fresh, tmp_path / "backup", progress=False, parts=[ModelBundlePart(fresh)])
    assert report["model_bundle"] == 1 and report["posts"] == 30
    installed = find_bundle_dir(fresh, MODEL)
    assert installed is not None and installed.parent == fresh.models_dir.resolve()
    assert folder_digest(installed) == carried
    assert default_bundle_name(fresh) == MODEL
    homes.open(fresh)  # (dropped at the end)
    if homes.kind == "embedded":
        homes.opened.pop().close()
    # Restored again there: the bundle is present, so nothing is installed twice.
    again = restore(fresh, tmp_path / "backup", progress=False, parts=[ModelBundlePart(fresh)])
    assert again["model_bundle"] == 0
    assert sorted(p.name for p in fresh.models_dir.iterdir()) == sorted([installed.name, "latest"])
    homes.open(fresh)

    # A home whose JOINTSPACE_MODEL names a bundle keeps it: the bundle is installed beside it.
    chosen = write_bundle(tmp_path / "chosen", name="chosen-bundle")
    pinned = homes.settings("home-c").model_copy(update={"model": chosen})
    assert restore(pinned, tmp_path / "backup", progress=False, parts=[ModelBundlePart(pinned)])["model_bundle"] == 1
    assert default_bundle_name(pinned) == "chosen-bundle" and find_bundle_dir(pinned, MODEL) is not None
    homes.open(pinned)

    # A carried bundle that is not the index's is refused before anything changes.
    shutil.copytree(tmp_path / "backup", tmp_path / "damaged")
    write_bundle(tmp_path / "damaged" / "model_bundle", name="another-bundle")
    damaged = homes.settings("home-d")
    with pytest.raises(ConfigurationError, match="damaged"):
        restore(damaged, tmp_path / "damaged", progress=False, parts=[ModelBundlePart(damaged)])
    from jointspace.backends import recorded_model

    assert recorded_model(damaged) is None and not damaged.models_dir.exists()

    # A home that cannot find the bundle still backs up, and says it carries none.
    shutil.rmtree(bundle)
    (settings.models_dir / "latest").unlink()
    lost = backup(settings, tmp_path / "without", progress=False, parts=[ModelBundlePart(settings)])
    assert lost["model_bundle"] == 0 and not (tmp_path / "without" / "model_bundle").exists()


def test_backup_while_writing_is_one_consistent_snapshot(homes: Homes, tmp_path: Path) -> None:
    settings = homes.settings("home-a")
    # Embedded: compact after 50 dead rows, so compactions replace the vector file during the backup.
    source = homes.open(settings, compact_min_dead=50) if homes.kind == "embedded" else homes.open(settings)
    ids = [f"w{i}" for i in range(300)]
    assert not source.upsert([versioned(i, 0) for i in ids]).errors
    source.refresh()
    stop = threading.Event()
    written = {"batches": 0}

    def writer() -> None:
        version = 1
        while not stop.is_set():
            # Overwrite a slice of the old posts with a new version and add new ones.
            batch = [versioned(i, version) for i in ids[(version * 37) % 250 :][:50]]
            batch += [versioned(f"new{version}-{j}", version) for j in range(5)]
            assert not source.upsert(batch).errors
            written["batches"] += 1
            version += 1

    def wait_for(batches: int) -> None:
        deadline = time.monotonic() + 300
        while written["batches"] < batches:
            assert thread.is_alive(), "the writer died (its traceback is above)"
            assert time.monotonic() < deadline, "the writer stalled"
            stop.wait(0.05)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        wait_for(3)
        manifest = backup(settings, tmp_path / "backup", progress=False)
        wait_for(written["batches"] + 3)  # keep writing after the backup too
    finally:
        stop.set()
        thread.join()
    if homes.kind == "embedded":  # compactions replaced the vector file while the writer ran
        import sqlite3

        with sqlite3.connect(settings.embedded_dir / "index.sqlite") as db:
            assert int(db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]) > 0

    target = homes.settings("home-b")
    restore(target, tmp_path / "backup", progress=False)
    restored = snapshot_of(homes.open(target))
    assert set(ids) <= set(restored)
    low, high = manifest.get("posts_range", [manifest["posts"]] * 2)
    assert low <= len(restored) <= high
    for post_id, (fields, vector) in restored.items():
        version = int(fields["caption"].split()[-1])
        # Every restored post's vector is the one written together with its fields: no torn pairs.
        assert np.array_equal(vector, versioned(post_id, version).vector), post_id


def test_restore_into_a_home_of_another_bundle_is_refused(homes: Homes, tmp_path: Path) -> None:
    settings = homes.settings("home-a")
    source = homes.open(settings)
    assert not source.upsert(city_corpus(50, DIM)).errors
    backup(settings, tmp_path / "backup", progress=False)

    other = homes.settings("home-b")
    theirs = homes.open(other, model="another-bundle")
    assert not theirs.upsert([doc("theirs", np.eye(DIM, dtype=np.float32)[0], model="another-bundle")]).errors
    theirs.refresh()
    with pytest.raises(ModelMismatchError) as refused:
        restore(other, tmp_path / "backup", progress=False)
    message = str(refused.value)
    assert "another-bundle" in message and MODEL in message and "refusing to restore" in message
    # Nothing changed there.
    assert theirs.count() == 1 and theirs.get("theirs") is not None


def test_cli_round_trip_and_refusal(tmp_path: Path) -> None:
    """The commands themselves, on the embedded store (no model is loaded by either)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}

    def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from jointspace.cli import main; main()", *args],
            env={**env, "JOINTSPACE_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=300,
        )

    from jointspace.alerts import SavedSearch, open_alert_store

    source = open_backend(Settings(home=tmp_path / "a"), MODEL, DIM)
    assert not source.upsert(city_corpus(40, DIM)).errors
    before = snapshot_of(source)
    # Two saved searches, one with its query vector: a restore into a new home keeps alerting.
    query = np.zeros(DIM, np.float32)
    query[3] = 1.0
    searches = [
        SavedSearch(id="s1", name="red things", expression="red", min_score=0.4, filters="city:oslo"),
        SavedSearch(id="s2", name="blue", expression="blue", mode="keyword", webhook="http://127.0.0.1:9/hook"),
    ]
    with closing(open_alert_store(Settings(home=tmp_path / "a"))) as alerts:
        alerts.add(searches[0], {MODEL: query})
        alerts.add(searches[1], {})
    done = run(tmp_path / "a", "backup", str(tmp_path / "bk"), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["posts"] == 40 and json.loads(done.stdout)["saved_searches"] == 2
    assert json.loads(done.stdout)["model_bundle"] == 0  # no bundle of that name in this home
    again = run(tmp_path / "a", "backup", str(tmp_path / "bk"))
    assert again.returncode != 0 and "not empty" in again.stderr

    other = open_backend(Settings(home=tmp_path / "b"), "another-bundle", DIM)
    other.close()
    refused = run(tmp_path / "b", "restore", str(tmp_path / "bk"))
    assert refused.returncode != 0
    assert "another-bundle" in refused.stderr and MODEL in refused.stderr

    into_c = run(tmp_path / "c", "restore", str(tmp_path / "bk"), "--json")
    assert into_c.returncode == 0 and json.loads(into_c.stdout)["saved_searches"] == 2
    restored = open_backend(Settings(home=tmp_path / "c"), MODEL, DIM)
    try:
        assert_identical(restored, before)
    finally:
        restored.close()
        source.close()
    with closing(open_alert_store(Settings(home=tmp_path / "c"))) as alerts:
        assert [s.to_json() for s in alerts.searches()] == [s.to_json() for s in searches]
        assert list(alerts.vectors(MODEL)) == ["s1"] and np.array_equal(alerts.vectors(MODEL)["s1"], query)

    # A home where p3 was taken down (say, before its index was lost) restores the backup without it.
    from jointspace.backends.takedown_register import open_takedowns

    register = open_takedowns(Settings(home=tmp_path / "d"))
    register.record(["p3"])
    register.close()
    with closing(open_alert_store(Settings(home=tmp_path / "d"))) as alerts:
        alerts.add(searches[0], {MODEL: query})  # saved here already: not added twice
    done = run(tmp_path / "d", "restore", str(tmp_path / "bk"))
    assert done.returncode == 0, done.stderr
    assert "restored 39 posts" in done.stderr and "1 post(s) of the backup left out: taken down" in done.stderr
    assert "1 saved search(es) added" in done.stderr
    # The backup carried no bundle, and this home's default cannot query the restored index: said.
    assert f"set JOINTSPACE_MODEL to {MODEL!r}'s folder" in done.stderr
    with closing(open_alert_store(Settings(home=tmp_path / "d"))) as alerts:
        assert [s.id for s in alerts.searches()] == ["s1", "s2"]

    # The same search under another id is not added again either (every match would POST twice).
    from dataclasses import replace

    with closing(open_alert_store(Settings(home=tmp_path / "e"))) as alerts:
        alerts.add(replace(searches[1], id="other"), {})
    done = run(tmp_path / "e", "restore", str(tmp_path / "bk"), "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["saved_searches"] == 1, done.stderr
    with closing(open_alert_store(Settings(home=tmp_path / "e"))) as alerts:
        assert sorted(s.id for s in alerts.searches()) == ["other", "s1"]

    # A damaged saved_searches.json is refused before the restore changes anything.
    import shutil

    shutil.copytree(tmp_path / "bk", tmp_path / "bk-damaged")
    (tmp_path / "bk-damaged" / "saved_searches.json").write_text('[{"vector": [1, 2]}]')
    damaged = run(tmp_path / "f", "restore", str(tmp_path / "bk-damaged"))
    assert damaged.returncode != 0 and "damaged" in damaged.stderr and "nothing was changed" in damaged.stderr
    assert not (tmp_path / "f" / "embedded").exists()

    # A home where no search was ever saved backs up none, and no alerts file appears for it.
    lone = open_backend(Settings(home=tmp_path / "g"), MODEL, DIM)
    assert not lone.upsert(city_corpus(5, DIM)).errors
    lone.close()
    done = run(tmp_path / "g", "backup", str(tmp_path / "bk-g"), "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["saved_searches"] == 0, done.stderr
    assert not any(p.name.startswith("alerts") for p in (tmp_path / "g").iterdir())

    # With the bundle in the home, the backup carries it and a new home restores it as its default.
    from jointspace.encoders.bundle import set_latest
    from jointspace.encoders.bundle_backup import default_bundle_name

    set_latest(write_bundle(tmp_path / "g" / "models" / MODEL), Settings(home=tmp_path / "g"))
    done = run(tmp_path / "g", "backup", str(tmp_path / "bk-g2"))
    assert done.returncode == 0 and "not found" not in done.stderr, done.stderr
    done = run(tmp_path / "h", "restore", str(tmp_path / "bk-g2"))
    assert done.returncode == 0 and f"model bundle {MODEL!r} installed" in done.stderr, done.stderr
    assert "JOINTSPACE_MODEL" not in done.stderr and default_bundle_name(Settings(home=tmp_path / "h")) == MODEL
    done = run(tmp_path / "g", "backup", str(tmp_path / "bk-g3"), "--no-bundle", "--json")
    assert done.returncode == 0 and json.loads(done.stdout).get("model_bundle") is None, done.stderr
    assert not (tmp_path / "bk-g3" / "model_bundle").exists()


def test_damaged_manifest_is_a_clear_error_and_links_are_not_followed(tmp_path: Path) -> None:
    from jointspace.errors import ConfigurationError
    from jointspace.media_roots import uploads_dir

    settings = Settings(home=tmp_path / "a")
    source = open_backend(settings, MODEL, DIM)
    try:
        assert not source.upsert(city_corpus(20, DIM)).errors
    finally:
        source.close()
    folder = tmp_path / "bk"
    backup(settings, folder, progress=False)
    manifest = folder / "manifest.json"
    good = manifest.read_text()
    target = Settings(home=tmp_path / "b")
    for damage, words in [
        ("{not json", "cannot be read"),
        (json.dumps({k: v for k, v in json.loads(good).items() if k != "model"}), "lacks model"),
        (json.dumps({**json.loads(good), "dim": "abc"}), "dim of the wrong type"),  # was a traceback
    ]:
        manifest.write_text(damage)
        with pytest.raises(ConfigurationError, match=words):
            restore(target, folder, progress=False)
    with pytest.raises(ConfigurationError, match="does not exist"):
        restore(target, tmp_path / "no-such-backup", progress=False)
    assert not target.embedded_dir.exists()  # nothing was touched
    # A backup of a home with no index leaves no empty folder behind it.
    with pytest.raises(ConfigurationError, match="nothing to back up"):
        backup(Settings(home=tmp_path / "empty"), tmp_path / "never", progress=False)
    assert not (tmp_path / "never").exists()
    manifest.write_text(good)
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the home")
    (folder / "uploads").mkdir(exist_ok=True)
    (folder / "uploads" / "link.jpg").symlink_to(secret)
    (folder / "uploads" / "real.jpg").write_bytes(b"bytes")
    restore(target, folder, progress=False)
    assert (uploads_dir(target) / "real.jpg").read_bytes() == b"bytes"  # files are copied...
    assert not (uploads_dir(target) / "link.jpg").exists()  # ...links are not


def test_restore_refuses_an_embedded_store_that_a_process_has_open(tmp_path: Path) -> None:
    from jointspace.errors import ConfigurationError

    settings = Settings(home=tmp_path / "a")
    source = open_backend(settings, MODEL, DIM)
    assert not source.upsert(city_corpus(20, DIM)).errors
    backup(settings, tmp_path / "bk", progress=False)
    # The same home, still open (as `jointspace serve` would hold it): swapping it would lose writes.
    with pytest.raises(ConfigurationError, match="open in another process"):
        restore(settings, tmp_path / "bk", progress=False)
    assert source.count() == 20  # untouched and still usable
    source.close()
    report = restore(settings, tmp_path / "bk", progress=False)
    assert report["previous"] is not None and report["posts"] == 20


@pytest.mark.es
@pytest.mark.slow
def test_elasticsearch_backup_outside_path_repo_says_what_to_do(tmp_path: Path) -> None:
    """A node whose path.repo does not cover the folder: a clear error naming path.repo, nothing half-written."""
    from jointspace.errors import ConfigurationError, JointspaceError
    from jointspace.services.elasticsearch_local import LocalElasticsearch

    allowed = tmp_path / "allowed"
    allowed.mkdir()
    node = LocalElasticsearch(
        tmp_path / "es", owner_pid=os.getpid(), settings=Settings(es_local_path_repo=str(allowed))
    )
    try:
        try:
            node.start(nodes=1, heap="384m", timeout_s=300)
        except JointspaceError as exc:
            pytest.fail(f"a dedicated Elasticsearch node could not start: {exc}", pytrace=False)
        settings = Settings(home=tmp_path / "home", es_url=node.urls[0], es_index_alias="test-path-repo")
        backend = open_backend(settings, MODEL, DIM)
        try:
            assert not backend.upsert(city_corpus(20, DIM)).errors
            with pytest.raises(ConfigurationError) as refused:
                backup(settings, tmp_path / "elsewhere", progress=False)
            assert "path.repo" in str(refused.value) and str(tmp_path / "elsewhere") in str(refused.value)
            assert not (tmp_path / "elsewhere" / "manifest.json").exists()
            manifest = backup(settings, tmp_path / "elsewhere-too", es_location=str(allowed / "b1"), progress=False)
            assert manifest["posts"] == 20 and (allowed / "b1").is_dir()
        finally:
            backend.close()
    finally:
        node.stop()
