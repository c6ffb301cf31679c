"""The sentence model through ONNX Runtime: the same vectors as sentence-transformers, and a word
query from the command line that never imports torch."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
from jointspace.backends import open_backend
from jointspace.encoders.sentence import MiniLMTextEncoder

from jointspace.records import Document, Post
from jointspace.settings import Settings

TEXTS = [
    "beach",
    "sunrise",
    "dog",
    "zorblaxian",
    "New York",
    "a red bike leaning on a park bench",
    "#sunsetBeach #nofilter",
    "Ünïcode café naïve",
    "x",
    "the river at night, city lights reflected " * 30,
]
HEAVY = ("torch", "transformers", "sentence_transformers", "gensim", "scipy")


def test_onnx_runtime_gives_the_sentence_transformers_vectors(minilm: MiniLMTextEncoder, settings: Settings) -> None:
    assert minilm.runtime == "onnx"  # the default on CPU, with onnxruntime installed
    reference = MiniLMTextEncoder(cache_dir=minilm.cache_dir, device="cpu", runtime="torch")
    assert reference.runtime == "torch"
    onnx, torch_side = minilm.encode(TEXTS), reference.encode(TEXTS)
    assert onnx.shape == torch_side.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(onnx * torch_side, axis=1)
    assert cosines.min() >= 0.999, dict(zip(TEXTS, cosines.round(5), strict=True))
    # Batching (and so padding and length sorting) changes nothing.
    np.testing.assert_allclose(minilm.onnx.encode(TEXTS, batch_size=3), onnx, atol=1e-5)
    np.testing.assert_allclose(minilm.encode(TEXTS[:1]), onnx[:1], atol=1e-5)


def test_a_word_query_from_the_command_line_never_imports_torch(
    minilm: MiniLMTextEncoder, home: Path, settings: Settings
) -> None:
    bundle = home / "onnx-cli-bundle"
    bundle.mkdir(exist_ok=True)
    name = "onnx-cli"
    (bundle / "manifest.json").write_text(
        json.dumps(
            {
                "format": 1,
                "name": name,
                "dim": 384,
                "text": {"name": "minilm", "config": {"vocab_size": settings.text_vocab_size}, "dim": 384},
                "image": {"name": "zeroshot", "config": {}},
            }
        ),
        encoding="utf-8",
    )
    captions = ["sunrise over the beach", "a dog in the park", "city lights at night"]
    backend = open_backend(settings, name, 384)
    result = backend.upsert(
        [
            Document(post=Post(id=f"p{i}", image=f"/x/{i}.jpg", caption=c), vector=v, model=name)
            for i, (c, v) in enumerate(zip(captions, minilm.encode(captions), strict=True))
        ]
    )
    assert not result.errors
    backend.close()
    minilm.vocab_matrix()  # the explanation's vocabulary, embedded once into the shared cache

    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    env |= {"JOINTSPACE_HOME": str(home), "JOINTSPACE_MODEL": str(bundle), "PYTHONPROFILEIMPORTTIME": "1"}

    def search(query: str) -> tuple[dict, set[str]]:
        done = subprocess.run(
            ["jointspace", "search", query, "-k", "2", "--json"], capture_output=True, text=True, env=env, timeout=300
        )
        assert done.returncode == 0, done.stderr[-3000:]
        imported = {m.group(1) for m in re.finditer(r"\|\s+([\w.]+)\s*$", done.stderr, re.MULTILINE)}
        heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
        assert not heavy, heavy
        return json.loads(done.stdout), imported

    # Words of the cached vocabulary come from its matrix: no model at all.
    answer, imported = search("beach+sunrise")
    assert answer["hits"][0]["id"] == "p0"
    assert answer["explain"]["nearest_words"], answer["explain"]
    assert "onnxruntime" not in imported
    # A word outside it goes to the sentence model, through ONNX Runtime, still without torch.
    assert not minilm.has_word("kitesurfing")
    answer, imported = search("beach+kitesurfing")
    assert answer["hits"][0]["id"] == "p0"
    assert "onnxruntime" in imported and "tokenizers" in imported
