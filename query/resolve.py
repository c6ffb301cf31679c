"""Terms → vectors: words and phrases through the text encoder, `[img:ID]` through the index."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np

from jointspace.errors import DimensionError, QueryError
from jointspace.protocols import SearchBackend, TextEncoder

from .syntax import Term

SUGGESTIONS = 5


def suggest(word: str, vocabulary: Sequence[str], n: int = SUGGESTIONS) -> list[str]:
    """Vocabulary words spelt most like `word` (best first; ties keep vocabulary order, which for
    word-vector tables is by frequency)."""
    try:
        from rapidfuzz import fuzz, process
    except ImportError:  # a checkout installed with --no-deps: slower, same kind of answer
        near = [w for w in vocabulary if abs(len(w) - len(word)) <= max(2, len(word) // 3)]
        return difflib.get_close_matches(word, near, n=n, cutoff=0.6)
    # rapidfuzz: a C++ edit-distance scan, ~0.2 s over GloVe's 400,000 words where difflib takes seconds.
    return [match for match, _, _ in process.extract(word, vocabulary, scorer=fuzz.ratio, limit=n, score_cutoff=60)]


def resolve(
    terms: Sequence[Term], text: TextEncoder, backend: SearchBackend, expression: str | None = None
) -> dict[tuple[str, str], np.ndarray]:
    """A vector for each distinct term, keyed by `Term.key`. Raises QueryError naming the first
    unknown word (with spelling suggestions) or unknown image id, at its position."""
    vectors: dict[tuple[str, str], np.ndarray] = {}
    words = [t for t in terms if t.kind == "word"]
    if not text.embeds_unseen_words:
        for term in words:
            if not text.has_word(term.text):
                hints = suggest(term.text, text.vocabulary())
                tail = f"; did you mean {', '.join(hints)}?" if hints else ""
                raise QueryError(f"unknown word '{term.text}'{tail}", term.position, expression, hints)
    if words:
        try:
            rows = text.embed_words([t.text for t in words])
        except KeyError as exc:  # the encoder knows better than has_word(): still a person's error
            bad = next((t for t in words if repr(t.text) in str(exc) or t.text in str(exc)), words[0])
            raise QueryError(f"unknown word '{bad.text}'", bad.position, expression) from None
        for term, row in zip(words, rows, strict=True):
            vectors[term.key] = np.asarray(row, dtype=np.float32)
    for term in terms:
        if term.kind == "phrase":
            vector = np.asarray(text.embed_caption(term.text), dtype=np.float32)
            if not np.any(vector):  # encoders give the zero vector when no word of a caption is known
                raise QueryError(
                    f"no word of the phrase \"{term.text}\" is known to the text encoder", term.position, expression
                )
            vectors[term.key] = vector
    images = [t for t in terms if t.kind == "image"]
    if images:
        found = backend.get_many([t.text for t in images], with_vector=True)
        for term in images:
            doc = found.get(term.text)
            if doc is None or doc.vector is None or np.asarray(doc.vector).size == 0:
                raise QueryError(f"no indexed image has the id '{term.text}'", term.position, expression)
            vectors[term.key] = np.asarray(doc.vector, dtype=np.float32)
    for term in terms:
        if vectors[term.key].shape != (backend.dim,):
            raise DimensionError(
                f"'{term.text}' has a {vectors[term.key].shape} vector; the index holds {backend.dim}-d vectors"
            )
    return vectors
