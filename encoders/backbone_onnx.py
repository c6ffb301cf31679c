"""The image backbone on the CPU through ONNX Runtime.

The eager torch network in batches of 64 spent 62-69 CPU ms per 224-px picture on this kind of
machine; the same network exported to ONNX and run by ONNX Runtime, a few pictures a call, spends
7-11 (bench/encoder_speed.py measures both in one run; features equal to 1e-5). Depthwise
convolutions are where eager torch is slow on CPUs, and small calls keep each call's activations in
cache. The text side runs on ONNX Runtime already (encoders/minilm_onnx.py).

The graph is exported from the network in memory when a process first embeds a picture (about a
second), so a fine-tuned backbone is always exported as it is now, and nothing is cached on disk
that could go stale.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jointspace.encoders.pooling import pooled

# Pictures per intra-op thread in one call: small calls keep activations in cache (2 per thread, i.e.
# 4 on 2 cores, cost the least CPU per picture here), and every thread still has a picture.
IMAGES_PER_THREAD = 2


class PooledNetwork(torch.nn.Module):
    """A backbone's pooled-feature pass as one module: the shape the ONNX exporter takes."""

    def __init__(self, network: Any, timm: bool, gem_p: float | None = None) -> None:
        super().__init__()
        self.network = network
        self.timm = timm
        self.gem_p = gem_p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pooled(self.network, self.timm, self.gem_p, x)


class OnnxBackbone:
    """Pooled features of normalised (N, 3, H, W) float32 arrays. Thread-safe (sessions are)."""

    def __init__(self, network: PooledNetwork, size: int, threads: int) -> None:
        import onnxruntime as ort

        with tempfile.TemporaryDirectory(prefix="jointspace-backbone-") as folder, torch.no_grad():
            path = Path(folder) / "backbone.onnx"
            torch.onnx.export(
                network.eval(),
                (torch.zeros(2, 3, size, size),),
                path,
                input_names=["images"],
                output_names=["pooled"],
                dynamic_axes={"images": {0: "n"}, "pooled": {0: "n"}},
                opset_version=17,
                dynamo=False,
            )
            graph = path.read_bytes()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        # Idle threads sleep rather than spin, as torch's do here (OMP_WAIT_POLICY, jointspace/__init__.py).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self.chunk = IMAGES_PER_THREAD * threads

    def pooled(self, images: np.ndarray) -> np.ndarray:
        images = np.ascontiguousarray(images, dtype=np.float32)
        parts = [
            self.session.run(None, {"images": images[start : start + self.chunk]})[0]
            for start in range(0, len(images), self.chunk)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
