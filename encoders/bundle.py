"""Model bundles: a folder holding everything that defines one joint space.

    <bundle>/manifest.json   name, dim, text encoder (name, config, probe vectors), image encoder
                             (name, config: backbone, head, zero-shot weight), loss, targets,
                             training data hash, date, metrics, code version
    <bundle>/head.pt         the trained head's weights (absent in a zero-training bundle)
    <bundle>/classes.npy     cached embeddings of the ImageNet class prompts (made on first use)
    <bundle>/text/           a text model trained with the bundle (word2vec / FastText), if any

Paths inside the manifest's configs are relative to the bundle folder. The sentence model's
vocabulary embeddings are shared by all bundles and homes under `$JOINTSPACE_CACHE_DIR/text`.

`load_bundle()` returns the same object for the same folder for the life of the process, and
loads the text and image models lazily, on first use.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from jointspace.encoders.imagenet import DEFAULT_PRIOR

from jointspace import __version__
from jointspace.atomic_write import write_text_atomic
from jointspace.errors import ConfigurationError, ModelMismatchError
from jointspace.protocols import ImageEncoder, ModelBundle, TextEncoder
from jointspace.records import utc_now_seconds
from jointspace.registry import BUNDLES, IMAGE_ENCODERS, TEXT_ENCODERS, load, reference
from jointspace.settings import Settings

MANIFEST = "manifest.json"
FORMAT = 1
LATEST = "latest"
PROBE_WORDS = ("photo", "beach", "dog", "red", "city")
# The zero-training fallback reads ImageNet classes through the WordNet prior (lemma + hypernyms),
# which beat the bare prompt on sources never trained on (docs/eval-report.md); the name says so, so
# an index built by the older prompt-only fallback is not queried with these vectors.
ZEROSHOT_NAME = "zeroshot-minilm-lite0-wordnet"
SHIPPED_DIR = "bundled/default"  # inside this package: the bundle shipped with jointspace
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_PATH_KEYS = ("path", "weights", "class_matrix", "vocabulary", "vocab_matrix", "neighbours")


def code_version() -> str:
    """The package version plus the git commit when run from a checkout."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def probe_vectors(text: TextEncoder) -> list[list[float]]:
    """A few fixed words' vectors: a fingerprint of the text encoder stored in the manifest."""
    words = [w for w in PROBE_WORDS if text.embeds_unseen_words or text.has_word(w)]
    return [[round(float(x), 5) for x in row] for row in text.embed_words(words)] if words else []


def _resolve(config: dict[str, Any], folder: Path) -> dict[str, Any]:
    out = dict(config)
    for key in _PATH_KEYS:
        if isinstance(out.get(key), str) and not Path(out[key]).is_absolute():
            out[key] = str(folder / out[key])
    if isinstance(out.get("backbone"), dict):  # a fine-tuned backbone's weights live in the bundle
        out["backbone"] = _resolve(out["backbone"], folder)
    return out


@dataclass
class Bundle:
    """A loaded bundle (the `ModelBundle` protocol). `text` and `image` load on first access."""

    path: Path
    manifest: dict[str, Any]
    settings: Settings

    def __post_init__(self) -> None:
        self.name: str = self.manifest["name"]
        self.dim: int = int(self.manifest["dim"])
        self._lock = threading.RLock()
        self._text: TextEncoder | None = None
        self._image: ImageEncoder | None = None

    @property
    def text(self) -> TextEncoder:
        with self._lock:
            if self._text is None:
                spec = self.manifest["text"]
                text = load(TEXT_ENCODERS, spec["name"])(_resolve(spec.get("config", {}), self.path), self.settings)
                self._check_text(text)
                self._text = text
            return self._text

    @property
    def image(self) -> ImageEncoder:
        with self._lock:
            if self._image is None:
                spec = self.manifest["image"]
                image = load(IMAGE_ENCODERS, spec["name"])(
                    _resolve(spec.get("config", {}), self.path), self.text, self.settings
                )
                if image.dim != self.dim:
                    raise ConfigurationError(
                        f"bundle {self.path}: image encoder gives {image.dim}-d vectors, the manifest says {self.dim}"
                    )
                self._image = image
            return self._image

    def _check_text(self, text: TextEncoder) -> None:
        spec = self.manifest["text"]
        if text.dim != self.dim or int(spec.get("dim", text.dim)) != text.dim:
            raise ConfigurationError(
                f"bundle {self.path} is {self.dim}-d but text encoder {spec['name']!r} gives {text.dim}-d vectors"
            )
        stored = spec.get("probe") or []
        # A passed check is remembered per bundle and encoder identity (weights, runtime), so a
        # one-off search does not start the sentence model only to re-check the same fingerprint.
        identity = getattr(text, "identity", None)
        passed = None
        if stored and identity is not None:
            key = hashlib.sha1(json.dumps([identity(), stored]).encode()).hexdigest()[:16]
            passed = self.settings.home / "cache" / "probe-checks" / f"{self.name}-{key}.ok"
            if passed.is_file():
                return
        if stored:
            now = np.asarray(probe_vectors(text), np.float32)
            ref = np.asarray(stored, np.float32)
            if now.shape != ref.shape or float(np.min(np.sum(now * ref, axis=1))) < 0.99:
                raise ModelMismatchError(
                    f"bundle {self.path} was made with a different {spec['name']!r} text encoder than the one "
                    f"installed now (its word vectors differ); retrain with `jointspace train` or install "
                    f"the encoder it was made with"
                )
            if passed is not None:
                write_text_atomic(passed, "")


def read_manifest(path: Path) -> dict[str, Any]:
    file = Path(path) / MANIFEST
    if not file.is_file():
        raise ConfigurationError(f"{path} is not a model bundle (no {MANIFEST}); make one with `jointspace train`")
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{file} is not valid JSON: {exc}") from exc
    missing = [k for k in ("name", "dim", "text", "image") if k not in manifest]
    if missing:
        raise ConfigurationError(f"{file} lacks {', '.join(missing)}")
    if int(manifest.get("format", 1)) > FORMAT:
        raise ConfigurationError(
            f"{file} has format {manifest['format']}, newer than this jointspace reads ({FORMAT}); upgrade jointspace"
        )
    if not _NAME.match(str(manifest["name"])):
        raise ConfigurationError(f"bundle name {manifest['name']!r} must be lower-case letters, digits and '-'")
    return manifest


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": FORMAT,
        "created": utc_now_seconds(),
        "code_version": code_version(),
        **manifest,
    }
    write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=False))
    return folder


def set_latest(folder: Path, settings: Settings) -> None:
    """Point `<models_dir>/latest` at `folder` (a text file holding the path: works where symlinks do not)."""
    write_text_atomic(settings.models_dir / LATEST, str(Path(folder).resolve()))


def latest_bundle_dir(settings: Settings) -> Path | None:
    pointer = settings.models_dir / LATEST
    if not pointer.is_file():
        return None
    target = Path(pointer.read_text(encoding="utf-8").strip())
    return target if (target / MANIFEST).is_file() else None


def zeroshot_manifest(
    text_name: str = "minilm",
    text_config: dict[str, Any] | None = None,
    backbone: dict[str, Any] | None = None,
    dim: int = 384,
    name: str = ZEROSHOT_NAME,
) -> dict[str, Any]:
    return {
        "name": name,
        "dim": dim,
        "text": {"name": text_name, "config": text_config or {}, "dim": dim},
        "image": {
            "name": "zeroshot",
            "config": {
                "backbone": backbone or {},
                "class_matrix": "classes.npy",
                "class_prior": DEFAULT_PRIOR.to_json(),
            },
        },
        "loss": None,
        "targets": None,
        "training": None,
        "metrics": {},
    }


def ensure_zeroshot_bundle(settings: Settings) -> Path:
    """The zero-training bundle under models_dir, written on first use (no training, no data needed)."""
    folder = settings.models_dir / ZEROSHOT_NAME
    if not (folder / MANIFEST).is_file():
        backbone = {
            "name": settings.backbone,
            "weights": str(settings.backbone_weights) if settings.backbone_weights else None,
            "pool": settings.backbone_pool,
        }
        write_manifest(folder, zeroshot_manifest(backbone=backbone))
    return folder


_LOADED: dict[Path, Bundle] = {}
_LOADED_LOCK = threading.Lock()


def shipped_bundle_dir() -> Path | None:
    """The bundle that ships with jointspace (`scripts/ship_bundle.py` copies one in), if present."""
    folder = Path(__file__).resolve().parent / SHIPPED_DIR
    return folder if (folder / MANIFEST).is_file() else None


def resolve_bundle_dir(path: Path | None, settings: Settings) -> Path:
    """path → settings.model → the bundle `jointspace train` made last → the shipped bundle (unless
    `shipped_model` is off) → the zero-training bundle."""
    chosen = path or settings.model or latest_bundle_dir(settings)
    if not chosen and settings.shipped_model:
        chosen = shipped_bundle_dir()
    return Path(chosen) if chosen else ensure_zeroshot_bundle(settings)


def find_bundle_dir(settings: Settings, name: str) -> Path | None:
    """The folder of the bundle called `name` among those this home can use (JOINTSPACE_MODEL, the
    last trained, the shipped one, the models folder), or None. Reads manifests only; writes nothing."""
    candidates = [settings.model, latest_bundle_dir(settings), shipped_bundle_dir()]
    if settings.models_dir.is_dir():
        candidates += sorted(p for p in settings.models_dir.iterdir() if not p.name.startswith("."))
    for folder in candidates:
        if folder is None or not (Path(folder) / MANIFEST).is_file():
            continue
        try:
            if read_manifest(Path(folder))["name"] == name:
                return Path(folder).resolve()
        except ConfigurationError:  # a damaged or foreign folder is not the one asked for
            continue
    return None


def load_bundle(path: Path | None, settings: Settings) -> Bundle:
    """The bundle at `path` (see `resolve_bundle_dir` for the default), loaded once per process.

    Reads and checks the manifest now; the models load on first use of `.text` / `.image`, where a
    text encoder that does not match the manifest raises ModelMismatchError.
    """
    folder = resolve_bundle_dir(path, settings).resolve()
    with _LOADED_LOCK:
        bundle = _LOADED.get(folder)
        if bundle is None:
            bundle = Bundle(folder, read_manifest(folder), settings)
            _LOADED[folder] = bundle
        return bundle


def open_model_bundle(settings: Settings) -> ModelBundle:
    """The model bundle these settings name: `bundle_factory` when set (a `jointspace.bundles` entry
    point's name or `module:function`, called with the settings: a user's own model), else the
    bundle folder `load_bundle` resolves. The one way every command, the API and the workers load it."""
    if settings.bundle_factory:
        try:
            factory = reference(BUNDLES, settings.bundle_factory)
        except ConfigurationError as exc:
            raise ConfigurationError(f"JOINTSPACE_BUNDLE_FACTORY={settings.bundle_factory!r}: {exc}") from exc
        bundle: ModelBundle = factory(settings)  # a user's function, found by name: untyped
        return bundle
    return load_bundle(settings.model, settings)


def forget_loaded() -> None:
    """Drop the per-process cache (tests; after replacing a bundle folder in place)."""
    with _LOADED_LOCK:
        _LOADED.clear()
