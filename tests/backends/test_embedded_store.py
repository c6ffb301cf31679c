"""What only the embedded store has to prove: reopening, compaction, and one writer beside reader processes."""

from __future__ import annotations

import multiprocessing
import zlib
from pathlib import Path

import numpy as np
import pytest
from jointspace.backends import open_backend
from jointspace.backends.embedded import EmbeddedBackend

from jointspace.errors import ConfigurationError, ModelMismatchError
from jointspace.records import Filters
from jointspace.settings import Settings
from tests.backends.backend_corpus import DIM, MODEL, doc, unit_vectors

BATCH = 40
BATCHES = 8


def vector_for(post_id: str, version: int) -> np.ndarray:
    """A vector any process can recompute from the id and the version (str hash() is salted per process)."""
    return unit_vectors(1, DIM, seed=zlib.crc32(f"{post_id}/{version}".encode()))[0]


def test_reopening_reads_what_was_written_and_refuses_another_model(tmp_path: Path) -> None:
    store = EmbeddedBackend(tmp_path, MODEL, DIM)
    vectors = unit_vectors(3, DIM, seed=1)
    store.upsert([doc(f"d{i}", v, caption="a red kite") for i, v in enumerate(vectors)])
    store.close()
    again = EmbeddedBackend(tmp_path, MODEL, DIM)
    assert again.count() == 3
    np.testing.assert_array_equal(again.get("d2").vector, vectors[2])
    assert [h.id for h in again.keyword("kites", k=5)] != []
    again.close()
    with pytest.raises(ModelMismatchError, match=rf"'{MODEL}' \({DIM} dims\).*JOINTSPACE_MODEL"):
        EmbeddedBackend(tmp_path, "another-model", DIM)
    with pytest.raises(ModelMismatchError, match=rf"\({DIM * 2} dims\)"):
        EmbeddedBackend(tmp_path, MODEL, DIM * 2)


def test_overwrites_are_compacted_without_losing_anything(tmp_path: Path) -> None:
    store = EmbeddedBackend(tmp_path, MODEL, DIM, compact_min_dead=5)
    ids = [f"d{i}" for i in range(10)]
    for version in range(4):
        store.upsert([doc(i, vector_for(i, version), caption=f"version {version}") for i in ids])
    # 30 dead rows against 10 live: compaction ran, into a new generation file.
    files = sorted(p.name for p in tmp_path.glob("vectors-*.f32"))
    assert files != ["vectors-0.f32"] and len(files) == 1
    assert (tmp_path / files[0]).stat().st_size < 4 * 10 * DIM * 4
    assert store.count() == 10
    for i in ids:
        got = store.get(i)
        assert got is not None and got.post.caption == "version 3"
        np.testing.assert_array_equal(got.vector, vector_for(i, 3))
        assert store.knn(vector_for(i, 3), k=1)[0].id == i
    assert store.keyword("version", k=20, filters=None) and len(store.keyword("version", k=20)) == 10
    store.close()


def _write(folder: str) -> None:
    store = EmbeddedBackend(Path(folder), MODEL, DIM)
    for batch in range(BATCHES):
        ids = [f"b{batch}-{i}" for i in range(BATCH)]
        store.upsert([doc(i, vector_for(i, 0), city=f"c{batch}") for i in ids])
        # Overwrite the previous batch and compact, so that row numbers and files change under the readers.
        if batch:
            previous = [f"b{batch - 1}-{i}" for i in range(BATCH)]
            store.upsert([doc(i, vector_for(i, 0), city=f"c{batch - 1}") for i in previous])
            store.compact()
    store.close()


def _read(folder: str, results: multiprocessing.Queue[object]) -> None:
    try:
        store = EmbeddedBackend(Path(folder), MODEL, DIM)
        counts = []
        while True:
            count = store.count()
            counts.append(count)
            for document in list(store.iter_documents(batch_size=64))[:5]:
                np.testing.assert_array_equal(document.vector, vector_for(document.id, 0))
                hit = store.knn(document.vector, k=1)[0]
                assert hit.id == document.id and hit.score == pytest.approx(1.0, abs=1e-5)
            if count == BATCH * BATCHES:
                break
        results.put(counts)
    except BaseException as exc:  # reported to the test process
        results.put(repr(exc))


@pytest.mark.timeout(120)
def test_one_writer_and_two_reader_processes(tmp_path: Path) -> None:
    EmbeddedBackend(tmp_path, MODEL, DIM).close()
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[object] = context.Queue()
    readers = [context.Process(target=_read, args=(str(tmp_path), results)) for _ in range(2)]
    writer = context.Process(target=_write, args=(str(tmp_path),))
    for process in (*readers, writer):
        process.start()
    outcomes = [results.get(timeout=110) for _ in readers]
    for process in (*readers, writer):
        process.join(timeout=10)
    assert writer.exitcode == 0
    for counts in outcomes:
        assert isinstance(counts, list), counts
        # Each batch appears whole (one transaction) and nothing ever disappears.
        assert all(c % BATCH == 0 for c in counts) and counts == sorted(counts)
        assert counts[-1] == BATCH * BATCHES
    assert sorted(p.name for p in tmp_path.glob("vectors-*.f32")) == [f"vectors-{BATCHES - 1}.f32"]
    store = EmbeddedBackend(tmp_path, MODEL, DIM)
    assert dict(store.cities()) == {f"c{b}": BATCH for b in range(BATCHES)}
    store.close()


def test_open_backend_picks_the_embedded_store_without_an_es_url(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, es_url=None)
    with pytest.raises(ConfigurationError, match="no embedded index"):
        open_backend(settings, MODEL, DIM, read_only=True)
    backend = open_backend(settings, MODEL, DIM)
    assert isinstance(backend, EmbeddedBackend) and backend.folder == settings.embedded_dir
    backend.close()
    open_backend(settings, MODEL, DIM, read_only=True).close()


def test_a_batch_of_new_and_overwritten_posts_then_filters_and_live_rows(tmp_path: Path) -> None:
    """The batched insert of new posts beside overwrites in the same batch (doc keys follow on, FTS
    and tags written), and the live rows read both without dead rows (no SQL) and with them."""
    vectors = unit_vectors(40, DIM, seed=5)
    store = EmbeddedBackend(tmp_path, MODEL, DIM)
    store.upsert(
        [doc(f"p{i}", vectors[i], caption=f"word{i}", hashtags=(f"t{i % 2}",), city="oslo") for i in range(10)]
    )
    assert list(store._live_rows()) == list(range(10))  # nothing dead: every row below next_row
    batch = [doc(f"p{i}", vectors[i], caption=f"word{i}", hashtags=(f"t{i % 2}",), city="rome") for i in range(5, 20)]
    store.upsert(batch)  # p5..p9 overwritten (rows 10..14), p10..p19 new (rows 15..24)
    assert store.count() == 20
    assert list(store._live_rows()) == [*range(5), *range(10, 25)]  # rows 5..9 are dead
    for i in (0, 7, 19):
        hit = store.knn(vectors[i], k=1)[0]
        assert hit.id == f"p{i}" and hit.score == pytest.approx(1.0, abs=1e-5)
        assert [h.id for h in store.keyword(f"word{i}", 5)] == [f"p{i}"]
    assert {h.id for h in store.knn(vectors[0], 20, filters=Filters(cities=("rome",)))} == {
        f"p{i}" for i in range(5, 20)
    }
    assert {h.id for h in store.knn(vectors[0], 20, filters=Filters(hashtags=("t1",)))} == {
        f"p{i}" for i in range(1, 20, 2)
    }
    keys = [row[0] for row in store._db.execute("SELECT doc_key FROM docs ORDER BY doc_key")]
    assert len(set(keys)) == 20 and keys == sorted(keys)
    store.close()
