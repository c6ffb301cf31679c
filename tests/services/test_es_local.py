"""The project's own Elasticsearch 8.19.21 node and cluster: real JVMs, real HTTP, elasticsearch-py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch, helpers

from jointspace.errors import BackendUnavailableError, ConfigurationError
from jointspace.services import es_launcher
from jointspace.services.elasticsearch_local import LocalElasticsearch, http_json

CLI = [sys.executable, "-c", "from jointspace.cli import main; main()"]


@pytest.fixture
def es(es_url: str) -> Iterator[Elasticsearch]:
    client = Elasticsearch(es_url, request_timeout=30)
    yield client
    client.close()


@pytest.fixture
def index_name(es: Elasticsearch) -> Iterator[str]:
    name = f"test-es-local-{uuid.uuid4().hex[:8]}"
    yield name
    es.indices.delete(index=name, ignore_unavailable=True)


@pytest.fixture(scope="module")
def cli_home(
    _es_single: tuple[str, LocalElasticsearch | None], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A JOINTSPACE_HOME whose services/es holds a running single node, for driving the real CLI."""
    _, service = _es_single
    if service is not None:
        yield service.root.parent.parent  # <home>/services/es
        return
    # The session node is an external one (JOINTSPACE_TEST_ES_URL): start our own for the CLI tests.
    home = tmp_path_factory.mktemp("cli-home")
    own = LocalElasticsearch(home / "services" / "es", owner_pid=os.getpid())
    own.start(nodes=1)
    yield home
    own.stop()


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"JOINTSPACE_HOME": str(home)}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=300)


def test_node_is_healthy_and_reports_8_19_21(es: Elasticsearch, es_url: str) -> None:
    health = es.cluster.health()
    assert health["status"] in ("green", "yellow")
    assert health["number_of_nodes"] == 1
    versions = {n["version"] for n in http_json(es_url, "/_nodes")["nodes"].values()}
    assert versions == {"8.19.21"}


def test_english_analyzer_stems_built_in_configured_and_in_a_mapping(es: Elasticsearch, index_name: str) -> None:
    tokens = [t["token"] for t in es.indices.analyze(analyzer="english", text="The runners were running")["tokens"]]
    assert tokens == ["runner", "were", "run"]  # "the" is an English stopword; Porter stems "running"
    es.indices.create(
        index=index_name,
        settings={
            "number_of_replicas": 0,
            "analysis": {
                "analyzer": {
                    "en_no_bikes": {"type": "english", "stopwords": ["bikes"]},
                    "porter": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase", "porter_stem"]},
                    "light": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase", "en_light"]},
                },
                "filter": {"en_light": {"type": "stemmer", "language": "light_english"}},
            },
        },
        mappings={"properties": {"caption": {"type": "text", "analyzer": "english"}}},
    )

    def analyze(**kwargs: str) -> list[str]:
        return [t["token"] for t in es.indices.analyze(index=index_name, **kwargs)["tokens"]]

    assert analyze(field="caption", text="Cycling bikes") == ["cycl", "bike"]
    assert analyze(analyzer="en_no_bikes", text="running bikes") == ["run"]
    assert analyze(analyzer="porter", text="Parks parking") == ["park", "park"]
    assert analyze(analyzer="light", text="Beaches") == ["beach"]
    es.index(index=index_name, id="1", document={"caption": "kids running on the beaches"}, refresh=True)
    assert es.search(index=index_name, query={"match": {"caption": "run beach"}})["hits"]["total"]["value"] == 1


def test_a_stemmer_language_the_node_lacks_is_refused_by_name(es: Elasticsearch, index_name: str) -> None:
    from elasticsearch import BadRequestError

    with pytest.raises(BadRequestError, match="german"):
        es.indices.create(
            index=index_name, settings={"analysis": {"filter": {"de": {"type": "stemmer", "language": "german"}}}}
        )


def test_dense_vector_knn_with_filter_inside(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(
        index=index_name,
        settings={"number_of_shards": 1, "number_of_replicas": 0},
        mappings={
            "properties": {
                "city": {"type": "keyword"},
                "vector": {
                    "type": "dense_vector",
                    "dims": 3,
                    "index": True,
                    "similarity": "dot_product",
                    "index_options": {"type": "int8_hnsw"},
                },
            }
        },
    )
    # Unit vectors at known angles from the query (1, 0, 0): the order by dot product is known.
    docs = {
        "p-near": ("paris", [1.0, 0.0, 0.0]),
        "p-mid": ("paris", [0.6, 0.8, 0.0]),
        "p-far": ("paris", [0.0, 0.0, 1.0]),
        "l-nearest": ("london", [1.0, 0.0, 0.0]),
        "l-mid": ("london", [0.8, 0.6, 0.0]),
    }
    ok, errors = helpers.bulk(
        es, ({"_index": index_name, "_id": i, "city": c, "vector": v} for i, (c, v) in docs.items()), refresh=True
    )
    assert ok == len(docs) and not errors
    knn = {
        "field": "vector",
        "query_vector": [1.0, 0.0, 0.0],
        "k": 3,
        "num_candidates": 10,
        "filter": {"term": {"city": "paris"}},
    }
    hits = es.search(index=index_name, knn=knn, source=False)["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["p-near", "p-mid", "p-far"]
    # dot_product similarity is reported as (1 + dot) / 2.
    assert [round(h["_score"], 2) for h in hits] == [1.0, 0.8, 0.5]


def test_cli_start_is_idempotent_and_status_json_has_its_shape(cli_home: Path) -> None:
    before = json.loads(run_cli(cli_home, "es", "status", "--json").stdout)
    again = run_cli(cli_home, "es", "start")
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stderr
    assert again.stdout.strip() == f"export JOINTSPACE_ES_URL={before['url']}"
    status = run_cli(cli_home, "es", "status", "--json")
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert {"url", "status", "nodes", "version"} <= set(info)
    assert info["url"] == before["url"] and info["pids"] == before["pids"]
    assert (info["status"], info["nodes"], info["version"]) in {("green", 1, "8.19.21"), ("yellow", 1, "8.19.21")}


def test_cli_status_of_nothing_says_stopped_and_exits_1(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "es", "status", "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout) == {"url": None, "status": "stopped", "nodes": 0, "version": None}
    assert run_cli(tmp_path, "es", "stop").stdout.strip() == "Elasticsearch was not running"


def test_a_node_that_dies_while_starting_is_reported_with_its_log(tmp_path: Path, es_url: str) -> None:
    # es_url first: the launcher is built. A 1 MB heap makes the JVM itself refuse to start.
    service = LocalElasticsearch(tmp_path / "es")
    with pytest.raises(BackendUnavailableError, match="(?s)exited while starting.*heap"):
        service.start(nodes=1, heap="1m", timeout_s=60)
    assert service.state() is None


def test_bad_heap_and_busy_port_are_clear_errors(tmp_path: Path, es_url: str) -> None:
    service = LocalElasticsearch(tmp_path / "es")
    with pytest.raises(ConfigurationError, match="JVM size"):
        service.start(heap="lots")
    busy_port = int(es_url.rsplit(":", 1)[1])
    with pytest.raises(ConfigurationError, match=f"{busy_port}.*in use"):
        service.start(http_port=busy_port)
    assert service.state() is None


def test_missing_java_names_the_package_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigurationError, match="apt-get install openjdk-17-jdk-headless"):
        es_launcher.find_java()


def test_cached_build_needs_no_maven_but_a_changed_one_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, es_url: str
) -> None:
    # es_url first: the launcher is built and stamped, so no Maven is needed to use it.
    java = shutil.which("java")
    assert java is not None
    monkeypatch.setenv("JAVA_HOME", str(Path(os.path.realpath(java)).parents[1]))
    monkeypatch.setenv("PATH", str(tmp_path))
    build = es_launcher.ensure_built(tmp_path / "build.log")
    assert build.jar.is_file() and any(build.lib_dir.glob("elasticsearch-8.19.21.jar"))
    copy = tmp_path / "launcher"
    shutil.copytree(es_launcher.launcher_source_dir() / "src", copy / "src")
    (copy / "pom.xml").write_text(es_launcher.launcher_source_dir().joinpath("pom.xml").read_text())
    monkeypatch.setattr(es_launcher, "launcher_source_dir", lambda: copy)
    with pytest.raises(ConfigurationError, match="apt-get install maven"):
        es_launcher.ensure_built(tmp_path / "build.log")


@pytest.mark.slow
def test_a_failed_build_shows_the_maven_log(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, es_url: str) -> None:
    # es_url first: Maven's local repository already holds every dependency, so this only compiles.
    copy = tmp_path / "launcher"
    shutil.copytree(es_launcher.launcher_source_dir() / "src", copy / "src")
    (copy / "pom.xml").write_text(es_launcher.launcher_source_dir().joinpath("pom.xml").read_text())
    (copy / "src/main/java/org/elasticsearch/node/Broken.java").write_text(
        "package org.elasticsearch.node; class Broken {"
    )
    monkeypatch.setattr(es_launcher, "launcher_source_dir", lambda: copy)
    with pytest.raises(ConfigurationError, match="(?s)launcher failed.*Broken.java"):
        es_launcher.ensure_built(tmp_path / "build.log")


@pytest.mark.slow
def test_cluster_spreads_three_shards_with_replicas_over_three_nodes(es_cluster: LocalElasticsearch) -> None:
    es = Elasticsearch(es_cluster.urls, request_timeout=60)
    name = f"test-cluster-{uuid.uuid4().hex[:8]}"
    try:
        es.indices.create(index=name, settings={"number_of_shards": 3, "number_of_replicas": 1})
        health = es.cluster.health(index=name, wait_for_status="green", timeout="60s")
        assert health["status"] == "green" and health["number_of_nodes"] == 3
        shards = es.cat.shards(index=name, format="json")
        assert len(shards) == 6 and {s["state"] for s in shards} == {"STARTED"}
        assert {s["node"] for s in shards} == {"es01", "es02", "es03"}
        # No node holds a primary and its own replica.
        for shard in {s["shard"] for s in shards}:
            assert len({s["node"] for s in shards if s["shard"] == shard}) == 2
    finally:
        es.indices.delete(index=name, ignore_unavailable=True)
        es.close()


@pytest.mark.slow
def test_cluster_survives_a_killed_node_and_takes_it_back(es_cluster: LocalElasticsearch) -> None:
    name = f"test-kill-{uuid.uuid4().hex[:8]}"
    es = Elasticsearch(es_cluster.urls[0], request_timeout=60)
    try:
        es.indices.create(index=name, settings={"number_of_shards": 3, "number_of_replicas": 1})
        helpers.bulk(es, ({"_index": name, "_id": str(i), "n": i} for i in range(300)), refresh=True)
        es.cluster.health(index=name, wait_for_status="green", timeout="60s")

        es_cluster.kill_node(2)
        assert len(es_cluster.live_urls()) == 2
        health = es.cluster.health(index=name, wait_for_nodes="2", wait_for_status="yellow", timeout="60s")
        assert health["number_of_nodes"] == 2 and not health["timed_out"]
        assert es.count(index=name)["count"] == 300  # a replica of every lost shard is promoted

        es_cluster.restart_node(2)
        health = es.cluster.health(index=name, wait_for_nodes="3", wait_for_status="green", timeout="120s")
        assert health["number_of_nodes"] == 3 and health["status"] == "green"
    finally:
        es.indices.delete(index=name, ignore_unavailable=True)
        es.close()


def test_a_start_without_port_comes_back_on_the_last_one(tmp_path: Path) -> None:
    """Workers and `serve` keep JOINTSPACE_ES_URL across `es stop` / `es start` (a new random port
    made workers dead-letter every batch against the old URL while the node ran elsewhere)."""
    home = tmp_path / "home"
    first = run_cli(home, "es", "start", "--heap", "256m")
    assert first.returncode == 0, first.stderr
    try:
        assert run_cli(home, "es", "stop").returncode == 0
        again = run_cli(home, "es", "start", "--heap", "256m")
        assert again.returncode == 0, again.stderr
        assert again.stdout == first.stdout  # the same export line
        assert "moved" not in again.stderr
    finally:
        run_cli(home, "es", "stop")
