"""Each text encoder's contract: unit float32 rows, unknown words, nearest words, captions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from jointspace.encoders.word_vectors import WordVectorEncoder, train_word_model, vectors_from_file

from jointspace.protocols import TextEncoder


def _assert_unit_rows(m: np.ndarray, dim: int) -> None:
    assert m.dtype == np.float32 and m.shape[1] == dim
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-4)


def test_minilm_contract(minilm: TextEncoder) -> None:
    assert isinstance(minilm, TextEncoder) and minilm.dim == 384 and minilm.embeds_unseen_words
    m = minilm.embed_words(["beach", "sunrise", "zorblaxian"])  # the last is no English word: still embedded
    _assert_unit_rows(m, 384)
    assert float(m[0] @ m[1]) > float(m[0] @ m[2])
    assert minilm.has_word("beach") and not minilm.has_word("zorblaxian")
    near = minilm.nearest_words(m[0], 5)
    assert near[0][0] == "beach" and near[0][1] == pytest.approx(1.0, abs=1e-2)
    cap = minilm.embed_caption("Sunrise over the sea", ["beachLife"])
    _assert_unit_rows(cap[None], 384)
    with pytest.raises(KeyError):
        minilm.embed_words(["  "])


def test_minilm_repeated_words_come_from_the_cache(minilm) -> None:  # noqa: ANN001
    first = minilm.embed_words(["lighthouse"])
    assert "lighthouse" in minilm._word_cache
    np.testing.assert_array_equal(minilm.embed_words(["lighthouse"]), first)


def test_minilm_vocabulary_matrix_is_cached_on_disk(minilm, settings) -> None:  # noqa: ANN001
    minilm.vocab_matrix()
    cached = list((settings.home / "cache" / "text").glob("minilm-vocab-1500-*.npy"))
    assert len(cached) == 1 and np.load(cached[0]).shape == (1500, 384)


def test_glove_contract(glove: TextEncoder) -> None:
    assert glove.dim == 50 and not glove.embeds_unseen_words and len(glove.vocabulary()) == 400_000
    m = glove.embed_words(["beach", "Dog"])
    _assert_unit_rows(m, 50)
    with pytest.raises(KeyError, match="qwxzlplk"):
        glove.embed_words(["beach", "qwxzlplk"])
    assert glove.nearest_words(m[0], 3)[0][0] == "beach"
    cap = glove.embed_caption("a dog on the beach #sunsetBeach")
    _assert_unit_rows(cap[None], 50)
    assert float(cap @ glove.embed_words(["beach"])[0]) > 0.5
    assert not glove.embed_caption("qwxzlplk").any()  # nothing known: the zero vector


def test_user_word_vector_files_with_and_without_header(tmp_path: Path) -> None:
    rows = {"cat": [1.0, 0.0, 0.1], "dog": [0.9, 0.1, 0.0], "car": [0.0, 1.0, 0.0]}
    glove_style = tmp_path / "vectors.txt"
    glove_style.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in rows.items()))
    w2v_style = tmp_path / "vectors.vec"
    w2v_style.write_text("3 3\n" + glove_style.read_text())
    for path in (glove_style, w2v_style):
        enc = WordVectorEncoder("mine", vectors_from_file(path))
        assert enc.dim == 3 and list(enc.vocabulary()) == ["cat", "dog", "car"]
        assert [w for w, _ in enc.nearest_words(enc.embed_words(["cat"])[0], 2)] == ["cat", "dog"]
        with pytest.raises(KeyError, match="horse"):
            enc.embed_words(["horse"])


def test_user_file_through_the_registered_glove_factory(tmp_path: Path, settings) -> None:  # noqa: ANN001
    from jointspace.registry import TEXT_ENCODERS, load

    path = tmp_path / "v.txt"
    path.write_text("sun 1 0\nmoon 0 1\n")
    enc = load(TEXT_ENCODERS, "glove")({"path": str(path)}, settings)
    assert enc.name == "glove-file" and enc.has_word("moon")


@pytest.mark.parametrize("kind", ["word2vec", "fasttext"])
def test_word_models_trained_on_captions(kind: str) -> None:
    sentences = [
        ["red", "car", "street"],
        ["blue", "car", "road"],
        ["red", "apple", "fruit"],
        ["green", "apple", "tree"],
        ["blue", "sky", "cloud"],
    ] * 20
    model = train_word_model(kind, sentences, dim=16, epochs=5, seed=1)
    enc = WordVectorEncoder(kind, model.wv, embeds_unseen_words=kind == "fasttext")
    _assert_unit_rows(enc.embed_words(["car", "apple"]), 16)
    assert enc.nearest_words(enc.embed_words(["apple"])[0], 1)[0][0] == "apple"
    if kind == "fasttext":
        _assert_unit_rows(enc.embed_words(["cars"]), 16)  # unseen: from character n-grams
    else:
        with pytest.raises(KeyError, match="cars"):
            enc.embed_words(["cars"])


def test_vocabulary_is_embedded_by_one_process_when_several_start_cold(tmp_path) -> None:
    """`serve --workers N` on a cold home: the processes share one embedding of the vocabulary
    (a file lock beside the cache), the others load the cache it wrote."""
    import subprocess
    import sys

    script = (
        "import logging; logging.basicConfig(level=logging.WARNING)\n"
        "from pathlib import Path\n"
        "from jointspace.encoders.sentence import MiniLMTextEncoder\n"
        f"m = MiniLMTextEncoder(vocab_size=300, cache_dir=Path({str(tmp_path)!r}))\n"
        "print(m.vocab_matrix().shape)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    assert all(out.strip() == "(300, 384)" for out, _ in outputs)
    embedded = sum(err.count("embedding the nearest-word vocabulary") for _, err in outputs)
    assert embedded == 1, [err for _, err in outputs]
