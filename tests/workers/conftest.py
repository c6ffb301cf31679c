"""Real worker processes for the fault tests: `jointspace worker` subprocesses on the session's Redis,
against real Elasticsearch, each test with its own queue, dead-letter key and index alias."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.workers.corpus import TEST_MAX_BYTES, TEST_MAX_PIXELS
from tests.workers.histogram_bundle import FACTORY, IMPORT_ROOT

BUNDLE_FACTORY = FACTORY
JOINTSPACE = shutil.which("jointspace") or "jointspace"


@dataclass
class Proc:
    """A child started in its own session, so that it and its children die together."""

    popen: subprocess.Popen[str]
    log: Path

    def kill9(self) -> None:
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(timeout=30)

    def stop(self, grace_s: float = 15.0) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.kill9()
            except ProcessLookupError:
                pass
        # Leftover children of a killed worker (prefork pool) share its process group.
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


@dataclass
class Rig:
    """The environment every process of one fault test shares, and the processes it started."""

    home: Path
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    def spawn(self, args: list[str], name: str, **extra_env: str) -> Proc:
        log = self.home / f"{name}-{len(self.procs)}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        handle = log.open("w")
        popen = subprocess.Popen(
            [JOINTSPACE, *args],
            env={**self.env, **extra_env},
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        proc = Proc(popen, log)
        self.procs.append(proc)
        return proc

    def worker(self, concurrency: int = 1, **extra_env: str) -> Proc:
        return self.spawn(
            [
                "worker",
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "info",
                "--hostname",
                f"w{len(self.procs)}-{uuid.uuid4().hex[:6]}@%h",
            ],
            "worker",
            **extra_env,
        )

    def settings(self):  # Settings, imported late so the env is the rig's
        from jointspace.settings import Settings

        return Settings(
            **{
                k[len("JOINTSPACE_") :].lower(): v
                for k, v in self.env.items()
                if k.startswith("JOINTSPACE_") and not k.startswith("JOINTSPACE_TEST_")
            }
        )

    def stop_all(self) -> None:
        for proc in self.procs:
            proc.stop()


def ingest_summary(proc: Proc) -> dict:
    """The JSON summary `ingest --json` printed last on stdout (the log holds stderr too)."""
    text = proc.log.read_text()
    return json.loads(text[text.index("{\n") : text.rindex("}") + 1])


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)


def es_ids(url: str, alias: str) -> list[str]:
    """The ids indexed under `alias` on the real node, after a refresh."""
    from elasticsearch import Elasticsearch

    with Elasticsearch(url, request_timeout=30) as client:
        client.indices.refresh(index=alias)
        hits = client.search(index=alias, size=10_000, source=False, query={"match_all": {}})["hits"]["hits"]
    return [h["_id"] for h in hits]


def es_count(url: str, alias: str) -> int:
    """How many posts `alias` holds after a refresh; 0 while it does not exist yet."""
    from elasticsearch import Elasticsearch

    try:  # a generous timeout: on a loaded machine a refresh can take seconds
        with Elasticsearch(url, request_timeout=30) as client:
            client.indices.refresh(index=alias)
            return int(client.count(index=alias)["count"])
    except Exception:  # not created yet
        return 0


def kill_worker_mid_ingest(rig: Rig, corpus_jsonl: Path, n_posts: int, es_url: str) -> tuple[Proc, int]:
    """Starts a slowed worker and `ingest` of the corpus, SIGKILLs the worker while batches are being
    embedded (some posts written, most not) and checks it held a batch then. Returns the producer
    (still running, waiting for a worker) and how many posts were indexed at the kill."""
    alias = rig.env["JOINTSPACE_ES_INDEX_ALIAS"]
    first = rig.worker(JOINTSPACE_TEST_EMBED_DELAY_S="0.6")
    producer = rig.spawn(["ingest", str(corpus_jsonl), "--json", "--quiet"], "ingest")
    wait_until(lambda: es_count(es_url, alias) >= 8, 90, "the first batches to be indexed\n" + first.tail())
    first.kill9()
    killed_at = es_count(es_url, alias)
    assert killed_at < n_posts, "the worker finished before it could be killed; slow it down further"
    log = first.log.read_text()
    assert log.count("] received") > log.count("] succeeded in"), "no batch was in hand at the kill"
    return producer, killed_at


# Small batches and small image limits, so that small corpora make many batches and the broken
# files of corpus.py cross the limits. Tests of the defaults (`rig_factory(defaults=True)`) leave
# them out. No test overrides a timeout: the defaults are the product.
SMALL_CORPUS_SETTINGS = {
    "JOINTSPACE_BATCH_SIZE": "4",
    "JOINTSPACE_IMAGE_MAX_PIXELS": str(TEST_MAX_PIXELS),
    "JOINTSPACE_IMAGE_MAX_BYTES": str(TEST_MAX_BYTES),
}


def base_env(home: Path, defaults: bool = False, **values: str) -> dict[str, str]:
    """The environment of a test's processes: its own home, queue, keys and index (isolation only),
    the histogram encoder, and unless `defaults`, SMALL_CORPUS_SETTINGS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    tag = uuid.uuid4().hex[:8]
    env.update(
        {
            "JOINTSPACE_HOME": str(home),
            "JOINTSPACE_BUNDLE_FACTORY": BUNDLE_FACTORY,
            "JOINTSPACE_CELERY_QUEUE": f"test-ingest-{tag}",
            "JOINTSPACE_DEAD_LETTER_KEY": f"test:dead-letters:{tag}",
            "JOINTSPACE_STREAM_KEY": f"test:posts:{tag}",
            "JOINTSPACE_ES_INDEX_ALIAS": f"posts-t{tag}",
            "PYTHONPATH": IMPORT_ROOT,
        }
    )
    if not defaults:
        env.update(SMALL_CORPUS_SETTINGS)
    env.update(values)
    return env


@pytest.fixture
def rig_factory(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    rigs: list[Rig] = []

    def make(defaults: bool = False, **values: str) -> Rig:
        home = tmp_path / f"home{len(rigs)}"
        rig = Rig(home, base_env(home, defaults, **values))
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.stop_all()
        alias = rig.env.get("JOINTSPACE_ES_INDEX_ALIAS")
        url = rig.env.get("JOINTSPACE_ES_URL")
        if alias and url:
            _drop_indices(url, alias)


def _drop_indices(url: str, alias: str) -> None:
    from elasticsearch import Elasticsearch

    try:
        with Elasticsearch(url.split(","), request_timeout=10) as client:
            # `<alias>.*`: the takedown register beside the alias's indices
            client.indices.delete(index=f"{alias}-*,{alias}.*", allow_no_indices=True, expand_wildcards="all")
    except Exception:  # the node may be the test's own, already stopped
        pass


@dataclass
class PersistentRedis:
    """A redis-server with an fsync-always append-only file, restartable on the same port and data:
    what a production broker holding a stream must be (the session's Redis keeps nothing on restart)."""

    folder: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.folder),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--daemonize",
                "no",
                "--logfile",
                str(self.folder / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        client = redis.Redis(port=self.port)
        wait_until(lambda: _pings(client), 15, f"redis on port {self.port}")
        client.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _pings(client) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[PersistentRedis]:
    from jointspace.services.processes import free_ports

    server = PersistentRedis(tmp_path / "redis-aof", free_ports(1)[0])
    server.start()
    yield server
    server.stop()
