"""Nearest words without a cold-start stall.

A text encoder's `nearest_words` may first have one-time work to do: load its model, embed its
whole vocabulary (the sentence model: 40,000 words, half a minute to minutes on a CPU, then cached
under the home). A server must not do that inside a request, and never once per request:
`NearestWords` does it once, in a background thread started with the server, and until it is done
answers `None` ("not ready yet") at once instead of waiting. The CLI, which answers one query,
uses `blocking=True` and waits only when the vocabulary is already cached (`only_if_cached`):
a first search on a fresh home would otherwise spend 40 s here on 2 cores embedding words for
its explanation; it answers without them and says how to get them. It builds no nearest-word
graph: one answer does not need one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Literal

import numpy as np

from jointspace.errors import JointspaceError
from jointspace.protocols import TextEncoder

log = logging.getLogger(__name__)

State = Literal["cold", "preparing", "ready", "failed"]


NOT_CACHED = (
    "nearest words skipped: this home has not embedded the nearest-word vocabulary yet (once, about "
    "a minute): `jointspace search --nearest-words` waits for it, `jointspace serve` prepares it"
)


class VocabularyNotReady(JointspaceError):
    """The nearest-word vocabulary is still being prepared (or failed); answer without it."""


class NearestWords:
    """`nearest(vector, k)` over a text encoder, with its one-time preparation done once."""

    def __init__(self, text: TextEncoder, blocking: bool = False, only_if_cached: bool = False) -> None:
        self.text = text
        self.blocking = blocking
        self.only_if_cached = only_if_cached
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._state: State = "cold"
        self._error: str | None = None
        self._started_at: float | None = None
        self._seconds: float | None = None
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> State:
        return self._state

    @property
    def ready(self) -> bool:
        return self._state == "ready"

    def start(self) -> None:
        """Begin the preparation: here when it is cheap (the encoder says its vocabulary is in memory
        or cached on disk), else in a daemon thread (it must not keep a stopping server alive).
        Idempotent: the work runs once however many callers start it."""
        with self._lock:
            if self._state != "cold":
                return
            self._state, self._started_at = "preparing", time.monotonic()
            if self._cheap():
                self._prepare()
                return
            self._thread = threading.Thread(target=self._prepare, name="nearest-words", daemon=True)
            self._thread.start()

    def _cheap(self) -> bool:
        """The encoder says its vocabulary is in memory or cached on disk (or has no costly preparation)."""
        prepared = getattr(self.text, "vocabulary_prepared", None)  # optional: encoders with costly prep
        return prepared is None or bool(prepared())

    def wait(self, timeout: float | None = None) -> bool:
        """Blocks until prepared (or failed); True when ready."""
        self.start()
        self._done.wait(timeout)
        return self.ready

    def _prepare(self) -> None:
        try:
            log.info("preparing the nearest-word vocabulary in the background")
            probe = self.text.embed_words([self.text.vocabulary()[0]])[0]
            self.text.nearest_words(probe, 1)  # loads the model and embeds (or reads) the vocabulary
            self._state = "ready"
            # Optional: a graph for fast lookups. Not for a one-shot caller (the CLI): its one
            # answer is exact already, and the graph would only hold its exit back.
            index = None if self.blocking else getattr(self.text, "index_vocabulary", None)
            if index is not None:
                threading.Thread(target=self._index, args=(index,), name="nearest-words-graph", daemon=True).start()
        except Exception as exc:  # a broken cache or model: searches go on without nearest words
            log.exception("could not prepare the nearest-word vocabulary")
            self._error = f"{type(exc).__name__}: {exc}"
            self._state = "failed"
        finally:
            self._seconds = time.monotonic() - (self._started_at or time.monotonic())
            self._done.set()
            log.info("nearest-word vocabulary %s after %.1f s", self._state, self._seconds)

    @staticmethod
    def _index(index: Callable[[], None]) -> None:
        # Exact answers go on meanwhile; a failure here only leaves them exact.
        try:
            index()
        except Exception:
            log.exception("could not index the nearest-word vocabulary; nearest words stay exact")

    def nearest(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The k nearest vocabulary words; raises VocabularyNotReady rather than wait (unless blocking)."""
        if self.only_if_cached and self._state == "cold" and not self._cheap():
            raise VocabularyNotReady(NOT_CACHED)
        if self.blocking:
            self.wait()
        elif not self.ready:
            self.start()
        if not self.ready:
            raise VocabularyNotReady(self.describe())
        return self.text.nearest_words(vector, k)

    def describe(self) -> str:
        """One line for /health and for answers given without nearest words."""
        if self._state == "ready":
            return f"nearest words ready (prepared in {self._seconds:.1f} s)"
        if self._state == "failed":
            return f"nearest words unavailable: {self._error}"
        if self._state == "preparing":
            since = time.monotonic() - (self._started_at or time.monotonic())
            return (
                f"nearest words not ready yet: the vocabulary is being prepared in the background "
                f"({since:.0f} s so far; the first time on a home takes a minute or more)"
            )
        return "nearest words not prepared yet"
