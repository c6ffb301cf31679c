"""NearestWords: the one-time preparation runs once, in the background, and nobody waits for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from jointspace.query.vocabulary import NearestWords, VocabularyNotReady


class SlowVocabularyEncoder:
    """A TextEncoder over three axis words whose vocabulary takes `prepare_s` to prepare, once,
    like the sentence model's (embedded, then cached); counts how often it is prepared."""

    name, dim, embeds_unseen_words = "axes", 3, False
    WORDS = ("red", "green", "blue")

    def __init__(self, prepare_s: float, cached: bool = False) -> None:
        self.prepare_s = prepare_s
        self.preparations = 0
        self._matrix: np.ndarray | None = np.eye(3, dtype=np.float32) if cached else None
        self._lock = threading.Lock()

    def has_word(self, word: str) -> bool:
        return word in self.WORDS

    def vocabulary(self) -> Sequence[str]:
        return self.WORDS

    def embed_words(self, words: Sequence[str]) -> np.ndarray:
        return np.stack([np.eye(3, dtype=np.float32)[self.WORDS.index(w)] for w in words])

    def embed_caption(self, caption: str, hashtags: Sequence[str] = ()) -> np.ndarray:
        return np.zeros(3, np.float32)

    def vocabulary_prepared(self) -> bool:
        return self._matrix is not None

    def nearest_words(self, vector: np.ndarray, k: int = 10) -> list[tuple[str, float]]:
        with self._lock:
            if self._matrix is None:
                self.preparations += 1
                time.sleep(self.prepare_s)
                self._matrix = np.eye(3, dtype=np.float32)
        sims = self._matrix @ vector
        order = np.argsort(-sims)[:k]
        return [(self.WORDS[i], float(sims[i])) for i in order]


def test_twenty_concurrent_callers_answer_at_once_and_the_work_runs_once() -> None:
    encoder = SlowVocabularyEncoder(prepare_s=2.0)
    nearest = NearestWords(encoder)
    nearest.start()
    assert nearest.state == "preparing" and not nearest.ready

    def ask(_: int) -> tuple[float, str]:
        started = time.monotonic()
        try:
            nearest.nearest(np.array([1.0, 0, 0], np.float32), 1)
            outcome = "answered"
        except VocabularyNotReady as exc:
            outcome = str(exc)
        return time.monotonic() - started, outcome

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(ask, range(20)))
    assert max(seconds for seconds, _ in answers) < 0.5
    assert all("not ready yet" in outcome for _, outcome in answers)
    assert nearest.wait(timeout=30)
    assert nearest.nearest(np.array([0, 0, 1.0], np.float32), 1)[0][0] == "blue"
    assert encoder.preparations == 1
    assert "ready" in nearest.describe()


def test_a_cached_vocabulary_is_ready_before_the_first_request() -> None:
    nearest = NearestWords(SlowVocabularyEncoder(prepare_s=60.0, cached=True))
    nearest.start()
    assert nearest.ready


def test_blocking_callers_wait_for_the_one_preparation() -> None:
    encoder = SlowVocabularyEncoder(prepare_s=0.5)
    nearest = NearestWords(encoder, blocking=True)
    with ThreadPoolExecutor(5) as pool:
        words = list(pool.map(lambda _: nearest.nearest(np.array([0, 1.0, 0], np.float32), 1)[0][0], range(5)))
    assert words == ["green"] * 5 and encoder.preparations == 1


def test_a_failed_preparation_is_reported_not_retried_per_request() -> None:
    class Broken(SlowVocabularyEncoder):
        def nearest_words(self, vector: np.ndarray, k: int = 10) -> list[tuple[str, float]]:
            self.preparations += 1
            raise OSError("cache unreadable")

    encoder = Broken(prepare_s=0)
    nearest = NearestWords(encoder)
    assert not nearest.wait(timeout=10)
    for _ in range(3):
        with pytest.raises(VocabularyNotReady, match="cache unreadable"):
            nearest.nearest(np.ones(3, np.float32), 1)
    assert encoder.preparations == 1 and nearest.state == "failed"


class IndexedVocabularyEncoder(SlowVocabularyEncoder):
    """Also has the optional `index_vocabulary` (the sentence model's graph): slow, and may fail."""

    def __init__(self, index_s: float, fail: bool = False) -> None:
        super().__init__(prepare_s=0.0, cached=True)
        self.index_s, self.fail = index_s, fail
        self.indexed = threading.Event()

    def index_vocabulary(self) -> None:
        time.sleep(self.index_s)
        if self.fail:
            raise RuntimeError("disk full")
        self.indexed.set()


@pytest.mark.parametrize("fail", [False, True])
def test_the_graph_is_built_after_ready_in_the_background_and_never_blocks(fail: bool) -> None:
    encoder = IndexedVocabularyEncoder(index_s=1.5, fail=fail)
    nearest = NearestWords(encoder)
    started = time.monotonic()
    nearest.start()  # a cached vocabulary: ready here, the graph still being built
    assert nearest.ready and time.monotonic() - started < 1.0
    assert nearest.nearest(np.array([0, 0, 1], np.float32), 1)[0][0] == "blue"  # exact meanwhile
    assert encoder.indexed.wait(3 if fail else 30) is not fail
    assert nearest.ready  # a failed graph leaves the answers exact, not the vocabulary unavailable


def test_a_one_shot_caller_builds_no_graph() -> None:
    """The CLI answers one query: a graph would only delay its exit (and its answer is exact)."""
    encoder = IndexedVocabularyEncoder(index_s=0.0)
    nearest = NearestWords(encoder, blocking=True)
    assert nearest.nearest(np.array([0, 0, 1], np.float32), 1)[0][0] == "blue"
    assert not encoder.indexed.wait(1.0)


def test_a_one_shot_caller_waits_only_for_a_cached_vocabulary() -> None:
    """The CLI's default: on a home that has not embedded the vocabulary it answers at once without
    nearest words (no minute-long first search) and says how to get them; once cached, it has them."""
    cold = SlowVocabularyEncoder(prepare_s=60.0)
    nearest = NearestWords(cold, blocking=True, only_if_cached=True)
    started = time.monotonic()
    with pytest.raises(VocabularyNotReady, match="jointspace search --nearest-words"):
        nearest.nearest(np.array([1.0, 0, 0], np.float32), 1)
    assert time.monotonic() - started < 1.0 and cold.preparations == 0 and nearest.state == "cold"
    cached = NearestWords(SlowVocabularyEncoder(prepare_s=60.0, cached=True), blocking=True, only_if_cached=True)
    assert cached.nearest(np.array([0, 1.0, 0], np.float32), 1)[0][0] == "green"
