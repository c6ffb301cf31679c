"""Each text encoder's contract: unit float32 rows, unknown words, nearest words, captions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from jointspace.encoders import minilm_onnx
from jointspace.encoders.factories import text_cache_dir
from jointspace.encoders.word_vectors import WordVectorEncoder, train_word_model, vectors_from_file

from jointspace.errors import ModelMismatchError
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


def test_minilm_repeated_words_come_from_the_cache(minilm) -> None:
    first = minilm.embed_words(["lighthouse"])
    assert "lighthouse" in minilm._word_cache
    np.testing.assert_array_equal(minilm.embed_words(["lighthouse"]), first)


def test_minilm_vocabulary_matrix_is_cached_on_disk(minilm, settings, monkeypatch) -> None:
    minilm.vocab_matrix()
    # In the user's cache, shared by every home; named by the words and the installed weights (other
    # versions' files may sit beside it).
    half = minilm._vocab_cache_path(list(minilm.vocabulary()))
    assert half.parent == text_cache_dir(settings)
    assert np.load(half).dtype == np.float16 and np.load(half).shape == (settings.text_vocab_size, 384)
    # ... and its unit float32 copy, which later processes map instead of converting the halves
    unit = np.load(minilm._unit_cache_path(half))
    assert unit.dtype == np.float32 and np.allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    # Other installed weights: another file (the cache may serve several environments).
    monkeypatch.setattr(minilm_onnx, "weights_stamp", lambda: "other-weights")
    assert minilm._vocab_cache_path(list(minilm.vocabulary())) != half


def test_minilm_fresh_process_takes_vocabulary_words_from_the_cache(minilm, settings) -> None:
    """A one-off word query maps the cached vocabulary instead of starting the sentence model."""
    from jointspace.encoders.sentence import MiniLMTextEncoder

    minilm.vocab_matrix()
    fresh = MiniLMTextEncoder(vocab_size=settings.text_vocab_size, cache_dir=text_cache_dir(settings))
    words = fresh.vocabulary()[:3]
    got = fresh.embed_words(words)
    assert fresh._onnx is None and fresh._model is None  # no model was loaded for vocabulary words
    want = minilm.encode(list(words))
    assert np.min(np.sum(got * want, axis=1)) > 0.999
    _assert_unit_rows(got, 384)
    assert fresh.embed_words(["zzyzxqvocabularyless"]).shape == (1, 384)  # others still go to the model


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


def test_user_file_through_the_registered_glove_factory(tmp_path: Path, settings) -> None:
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


def test_bundle_probe_check_is_remembered_per_encoder_identity(settings, monkeypatch) -> None:
    """The bundle's text fingerprint is checked with the model once per home and encoder identity;
    a one-off search on the same home then does not start the model only to check it again."""
    import shutil

    from jointspace.encoders.bundle import forget_loaded, load_bundle
    from jointspace.encoders.sentence import MiniLMTextEncoder

    # The home is the session's: tests before this one may have left their marks already.
    shutil.rmtree(settings.home / "cache" / "probe-checks", ignore_errors=True)
    forget_loaded()
    _ = load_bundle(None, settings).text  # checked with the model, or the vocabulary cached from these weights
    marks = list((settings.home / "cache" / "probe-checks").glob("*.ok"))
    assert len(marks) == 1
    # A new process (a one-off search) on the same home: the check passes without the model.
    import subprocess
    import sys

    script = (
        "import sys; from jointspace.encoders.bundle import load_bundle; from jointspace.settings import Settings; "
        f"load_bundle(None, Settings(home={str(settings.home)!r})).text; "
        "print(sorted(m for m in ('onnxruntime', 'torch', 'sentence_transformers') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
    # Other weights (another identity): checked again, and a mismatch is still refused.
    monkeypatch.setattr(MiniLMTextEncoder, "identity", lambda self: "minilm:onnx:other-weights")
    monkeypatch.setattr(MiniLMTextEncoder, "embed_words", lambda self, words: np.eye(len(words), 384, dtype=np.float32))
    forget_loaded()
    with pytest.raises(ModelMismatchError):
        _ = load_bundle(None, settings).text
    forget_loaded()
