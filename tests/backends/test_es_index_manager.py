"""Index lifecycle on the real node: create from the template, alias, atomic swap under load, drop old."""

from __future__ import annotations

import http.server
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jointspace.backends.elasticsearch import ElasticsearchBackend
from jointspace.es_mappings.client import connect
from jointspace.es_mappings.manager import IndexManager

from jointspace.errors import BackendUnavailableError, ConfigurationError, ModelMismatchError
from jointspace.services.processes import free_ports
from jointspace.settings import Settings
from tests.backends.backend_corpus import DIM, MODEL, doc, unit_vectors
from tests.backends.backend_support import es_settings

pytestmark = pytest.mark.es


@pytest.fixture
def settings(es_url: str, tmp_path: Path) -> Settings:
    return es_settings(es_url, tmp_path)


@pytest.fixture
def manager(settings: Settings) -> Iterator[IndexManager]:
    client = connect(settings)
    manager = IndexManager(client, settings)
    yield manager
    for info in manager.indices():
        client.indices.delete(index=info.name, ignore_unavailable=True)
    client.close()


def test_create_alias_and_list(manager: IndexManager) -> None:
    assert manager.current() is None
    first = manager.create(MODEL, DIM, version="v1")
    assert first == f"{manager.alias}-{MODEL}-v1"
    assert manager.meta(first)["model"] == MODEL and manager.meta(first)["dim"] == DIM
    mapping = manager.client.indices.get_mapping(index=first)[first]["mappings"]
    assert mapping["properties"]["caption"]["analyzer"] == "english"
    assert mapping["properties"]["vector"]["index_options"]["type"] == "int8_hnsw"
    manager.point_alias(first)
    assert manager.current() == first
    infos = manager.indices()
    assert [(i.name, i.model, i.dim, i.aliased) for i in infos] == [(first, MODEL, DIM, True)]


def test_open_creates_a_missing_index_unless_read_only(settings: Settings, manager: IndexManager) -> None:
    with pytest.raises(ConfigurationError, match=f"no index behind alias '{settings.es_index_alias}'"):
        ElasticsearchBackend.open(settings, MODEL, DIM, read_only=True)
    assert manager.indices() == []
    backend = ElasticsearchBackend.open(settings, MODEL, DIM)
    assert backend.count() == 0
    assert manager.current() is not None and manager.meta(manager.current())["model"] == MODEL
    # Opening again finds the same index rather than making another.
    ElasticsearchBackend.open(settings, MODEL, DIM, read_only=True)
    assert len(manager.indices()) == 1


def test_processes_opening_a_fresh_alias_at_once_share_one_index(settings: Settings, manager: IndexManager) -> None:
    # Workers and the producer of a first ingest open the backend together (tests/workers'
    # cluster test met it: two write indices behind the alias). Each round, eight openers are
    # released at once onto a fresh alias; all must end on the same, single index.
    for round_ in range(3):
        alias = f"{settings.es_index_alias}-race{round_}"
        racing = settings.model_copy(update={"es_index_alias": alias})
        start = threading.Barrier(8)
        opened: list[str] = []
        failures: list[BaseException] = []

        def open_it(
            racing: Settings = racing,
            start: threading.Barrier = start,
            opened: list[str] = opened,
            failures: list[BaseException] = failures,
        ) -> None:
            start.wait()
            try:
                backend = ElasticsearchBackend.open(racing, MODEL, DIM)
                opened.append(IndexManager(backend.client, racing).current() or "")
                backend.close()
            except BaseException as exc:  # collected: a thread's exception would be lost
                failures.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        race = IndexManager(manager.client, racing)
        try:
            assert failures == []
            assert len(set(opened)) == 1 and len(opened) == 8
            assert [i.name for i in race.indices()] == opened[:1] and race.current() == opened[0]
        finally:
            for info in race.indices():
                manager.client.indices.delete(index=info.name, ignore_unavailable=True)


def test_another_model_is_refused_with_what_to_do(settings: Settings, manager: IndexManager) -> None:
    ElasticsearchBackend.open(settings, MODEL, DIM)
    with pytest.raises(ModelMismatchError, match=rf"built by model bundle '{MODEL}'.*JOINTSPACE_MODEL"):
        ElasticsearchBackend.open(settings, "other-model", DIM)
    with pytest.raises(ModelMismatchError, match=rf"\({DIM} dims\).*\({DIM * 2} dims\)"):
        ElasticsearchBackend.open(settings, MODEL, DIM * 2)


def test_swap_keeps_search_answering_and_drop_old(settings: Settings, manager: IndexManager) -> None:
    vectors = unit_vectors(50, DIM, seed=11)
    old_backend = ElasticsearchBackend.open(settings, MODEL, DIM)
    old_backend.upsert([doc(f"old{i}", v, caption="old") for i, v in enumerate(vectors)])
    old_backend.refresh()
    old_index = manager.current()

    failures: list[BaseException] = []
    answers: list[set[str]] = []
    stop = threading.Event()

    def search_forever() -> None:
        while not stop.is_set():
            try:
                answers.append({h.post.caption for h in old_backend.knn(vectors[0], k=3)})
            except BaseException as exc:  # any failure during the swap is the finding
                failures.append(exc)

    searcher = threading.Thread(target=search_forever)
    searcher.start()
    try:
        new_index = manager.create(MODEL, DIM)
        new = ElasticsearchBackend(old_backend.client, settings, MODEL, DIM, new_index, quantized=True)
        new.upsert([doc(f"new{i}", v, caption="new") for i, v in enumerate(vectors)])
        new.refresh()
        while len(answers) < 5:
            time.sleep(0.05)
        manager.point_alias(new_index)
        seen = len(answers)
        while len(answers) < seen + 5:
            time.sleep(0.05)
    finally:
        stop.set()
        searcher.join()
    assert failures == []
    assert all(answer in ({"old"}, {"new"}) for answer in answers)  # never empty, never mixed
    assert answers[0] == {"old"} and answers[-1] == {"new"}
    assert manager.current() == new_index

    spare = manager.create(MODEL, DIM)
    with pytest.raises(ConfigurationError, match="behind alias"):
        manager.drop(new_index)
    assert manager.drop_old(keep=1) == [old_index]
    assert manager.drop_old() == [spare]
    assert [i.name for i in manager.indices()] == [new_index]
    assert old_backend.count() == 50


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (kernel backlog) but never answers: a hung node."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.fixture
def http_port_not_elasticsearch() -> Iterator[int]:
    """A plain HTTP server answering 404 to everything: a wrong URL that does answer."""
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


# The pytest timeout bounds each case: the connect timeout (2 s), not the request timeout (120 s),
# must apply, so a wrong URL is reported at once instead of hanging a CLI command or a service.
@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["refused", "hung", "not-elasticsearch"])
def test_unreachable_url_is_reported_with_the_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    port = {
        "refused": lambda: free_ports(1)[0],
        "hung": lambda: request.getfixturevalue("silent_port"),
        "not-elasticsearch": lambda: request.getfixturevalue("http_port_not_elasticsearch"),
    }[kind]()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(home=tmp_path, es_url=url, es_connect_timeout_s=2.0, es_request_timeout_s=120.0)
    with pytest.raises(BackendUnavailableError, match=re.escape(url)):
        ElasticsearchBackend.open(settings, MODEL, DIM)


def test_node_refusals_are_reported_per_item_with_the_reason(settings: Settings, manager: IndexManager) -> None:
    backend = ElasticsearchBackend.open(settings, MODEL, DIM)
    vector = unit_vectors(1, DIM, seed=12)[0]
    bad = doc("bad", vector)
    # Slips past the Python types; the strict mapping refuses it on the node, in the bulk response.
    object.__setattr__(bad.post, "city", {"not": "a keyword"})
    result = backend.upsert([doc("good", vector), bad], chunk_size=1)
    assert result.indexed == ["good"]
    assert result.errors["bad"].startswith("document_parsing_exception: ") and "[city]" in result.errors["bad"]
    backend.refresh()
    assert backend.count() == 1


def test_force_merge_leaves_one_segment_and_search_unchanged(settings: Settings, manager: IndexManager) -> None:
    """Each refresh after a write makes a segment (a graph of its own); force_merge runs the merge as
    a task on the node, polls it to the end and leaves one segment with the same answers."""
    vectors = unit_vectors(300, DIM, seed=5)
    backend = ElasticsearchBackend.open(settings, MODEL, DIM)
    for start in range(0, 300, 100):
        assert not backend.upsert([doc(f"p{i}", vectors[i]) for i in range(start, start + 100)]).errors
        backend.refresh()
    index = manager.current()
    assert index is not None
    assert manager.segments() >= 3
    before = [h.post.id for h in backend.knn(vectors[7], k=10, num_candidates=300)]
    report = manager.force_merge(poll_s=0.2)
    assert (report.index, report.after, report.done) == (index, 1, True)
    assert report.before >= 3 and report.task is not None and report.seconds > 0
    assert manager.segments(index) == 1 and manager.merging(index) == []
    assert [h.post.id for h in backend.knn(vectors[7], k=10, num_candidates=300)] == before
    again = manager.force_merge()  # nothing to do: no task started
    assert (again.before, again.after, again.task, again.seconds) == (1, 1, None, 0.0)
    backend.close()


def test_force_merge_without_waiting_returns_the_task(settings: Settings, manager: IndexManager) -> None:
    vectors = unit_vectors(200, DIM, seed=6)
    backend = ElasticsearchBackend.open(settings, MODEL, DIM)
    for start in (0, 100):
        assert not backend.upsert([doc(f"p{i}", vectors[i]) for i in range(start, start + 100)]).errors
        backend.refresh()
    report = manager.force_merge(wait=False)
    assert report.task is not None and not report.done and report.before >= 2
    deadline = time.monotonic() + 60
    while manager.merging() and time.monotonic() < deadline:
        time.sleep(0.2)
    backend.refresh()
    assert manager.segments() == 1
    backend.close()


def test_transport_failures_are_logged_one_line_each(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    """A retried request to a node that went away is a warning of one line naming the failure, not
    the whole urllib3 traceback (an outage of minutes put thousands of them in a worker's log)."""
    import logging

    from elastic_transport import ConnectionError as TransportConnectionError
    from elasticsearch import Elasticsearch

    connect(settings).close()  # a client of the product's: the filter is installed with it
    dead = f"http://127.0.0.1:{free_ports(1)[0]}"
    with caplog.at_level(logging.WARNING, logger="elastic_transport"), Elasticsearch(dead, max_retries=1) as client:
        with pytest.raises(TransportConnectionError):
            client.cluster.health()
    retried = [r for r in caplog.records if r.name == "elastic_transport.transport" and "Retrying" in r.getMessage()]
    assert retried, [r.getMessage() for r in caplog.records]
    assert all(r.exc_info is None and "ConnectionError" in r.getMessage() for r in retried)
    assert "Traceback" not in caplog.text
