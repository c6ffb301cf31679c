"""Training runs end to end: prepared items → cached features → targets → a trained head
(written as a bundle by `bundle_writer.save_trained`).

Shared by `jointspace train` and `jointspace eval --grid`, so both train heads the same way.
Sources: the head trains on `train_sources` (train split). Early stopping and the ensemble
weight are chosen on the *validation split of other sources* (`val_sources`), because in-domain
validation praises heads that do not generalise (RETRIEVAL-NOTES); if none of those is prepared,
on a held-out mix (the val split of the training sources).

Each entry of `val_sources` is one validation set and the selection score is the *mean* of their
single-keyword P@10, so one kind of picture cannot dominate. The entry `photos` (in `train_sources`
too) stands for the photo sources (`PHOTO_SOURCES`: those that carry real photographs). They are
small, so they are split 40/30/30 by id hash (`photo_split_of`) rather than 80/10/10: heads train on
the train part, the val part takes part in selection, and `jointspace eval` reports only the test part.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from jointspace.datasets.prepared import photo_part
from jointspace.datasets.scanners import SOURCE_NAMES, get_source
from jointspace.encoders.backbone import BackboneSpec
from jointspace.encoders.evaluation.core import Gallery, GalleryScorer
from jointspace.encoders.features import CachedOutputs, FeatureCache
from jointspace.encoders.head import ProjectionHead
from jointspace.encoders.image_encoders import class_prompt_matrix, ensemble, run_head, zeroshot_vectors
from jointspace.encoders.imagenet import ClassPrior
from jointspace.encoders.knn import NeighbourBank, blend
from jointspace.encoders.targets import TargetKind, build_targets, label_words
from jointspace.encoders.training import TrainConfig, TrainResult, train_head
from jointspace.encoders.vectors import unit_rows
from jointspace.encoders.words import caption_words

from jointspace.errors import ConfigurationError
from jointspace.protocols import TextEncoder
from jointspace.settings import Settings

log = logging.getLogger(__name__)

# Weight of the zero-training vector in the blend, chosen on validation (1.0: the zero-training vector alone).
ENSEMBLE_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))
# The sources that carry real photographs (prepared as JPEG by their scanners: gcompris, scratch,
# kphotoalbum, stellarium, wallpapers), read from the source table rather than listed again here.
PHOTO_SOURCES = tuple(n for n in SOURCE_NAMES if get_source(n).image_suffix == ".jpg")
PHOTOS = "photos"  # in train_sources / val_sources: that part of every prepared photo source
ALL = "all"  # in train_sources: every prepared source


@dataclass(frozen=True)
class RunOptions:
    text: str = "minilm"
    targets: TargetKind = "word"
    train: TrainConfig = field(default_factory=TrainConfig)
    # Drawings and photos: a head trained on drawings alone did not beat the zero-training vector on
    # photos (docs/eval-report.md); tuxpaint stays out as the source no head sees.
    train_sources: tuple[str, ...] = ("openclipart", PHOTOS)
    val_sources: tuple[str, ...] = ("tuxpaint", PHOTOS)
    augment: tuple[str, ...] = ()  # AUGMENTED variants measured no gain across sources (docs/eval-report.md)
    word_model_dim: int = 100
    limit: int | None = None  # at most this many training items (photos first, then the first drawings by id)
    # Which parts of each training source to train on; leave-one-source-out trains on all of them.
    parts: tuple[str, ...] = ("train",)
    # How ImageNet classes become text for the zero-training vector (blend and prior targets).
    prior: ClassPrior = field(default_factory=ClassPrior)
    # Share of each target taken from the image's own zero-training vector: the WordNet prior as an
    # extra soft target, so the head keeps what the classifier knows about general words.
    prior_target_weight: float = 0.0
    # Without validation sets (`val_sources` empty) the head trains all `train.epochs` and is blended
    # with the zero-training vector at this weight (chosen by leave-one-source-out, not in the run).
    zeroshot_weight: float = 0.2
    # Share of the blend taken by the nearest training pictures' targets (`knn.NeighbourBank`: the
    # similarity-weighted mean of the targets of `neighbour_k` neighbours at `neighbour_temperature`);
    # the head gets 1 − zeroshot_weight − neighbour_weight. 0: no neighbours (none kept in the bundle).
    neighbour_weight: float = 0.0
    neighbour_k: int = 30
    neighbour_temperature: float = 0.1


# What `jointspace train` and `jointspace eval --loso` use by default: the leave-one-source-out winner
# over all prepared sources (docs/eval-report.md). Every picture of every source trains, nothing is
# held back for validation, and the blend weights are the ones LOSO chose: the ridge head 0.15, the
# zero-training vector 0.5, the 10 nearest training pictures' targets 0.35.
DEFAULT_RUN = RunOptions(
    train=TrainConfig(loss="ridge", ridge_lambda=300.0),
    train_sources=(ALL,),
    val_sources=(),
    parts=("train", "val", "test"),
    prior=ClassPrior("wordnet"),
    zeroshot_weight=0.5,
    neighbour_weight=0.35,
    neighbour_k=10,
    neighbour_temperature=0.1,
)


@dataclass
class TrainedHead:
    options: RunOptions
    text: TextEncoder
    result: TrainResult
    zeroshot_weight: float
    val_scores: dict[str, Any]  # P@10 per weight and "zeroshot", plus "sets" and "validation"
    class_matrix: np.ndarray
    word_model: Any = None  # the gensim model for word2vec / fasttext
    data_hash: str = ""
    n_train: int = 0
    backbone_weights: str | None = None  # set by fine-tuning: a file inside the bundle
    max_per_source: int | None = None  # the workspace's cap on pictures per source, if any
    data_sources: tuple[str, ...] = ()  # the sources of the pictures it trained on
    neighbours: NeighbourBank | None = None  # with options.neighbour_weight > 0: the training pictures' bank

    def vectors(self, features: np.ndarray, logits: np.ndarray, top_k: int, zeroshot_weight: float | None = None):
        """The image vectors this head's bundle makes from backbone outputs (head, zero-training vector
        and neighbours blended), at `zeroshot_weight` (default: its own)."""
        w = self.zeroshot_weight if zeroshot_weight is None else zeroshot_weight
        head = run_head(self.result.head, features)
        zs = zeroshot_vectors(logits, self.class_matrix, top_k)
        nw = self.options.neighbour_weight
        near = self.neighbours.vectors(features) if self.neighbours is not None and nw > 0 else None
        return blend(head, zs, w, near, nw if near is not None else 0.0)

    @property
    def label(self) -> str:
        return f"{self.options.text}/{self.options.train.loss}/{self.options.targets}"


def data_hash(items: Sequence[Any]) -> str:
    return hashlib.sha1("\n".join(sorted(it.post.id for it in items)).encode()).hexdigest()[:16]


class Workspace:
    """What one process reuses across runs: the feature cache, text encoders, class-prompt matrices."""

    def __init__(
        self,
        settings: Settings,
        items_loader=None,
        max_per_source: int | None = None,
        backbone: str | None = None,
        tta: tuple[str, ...] = (),
        train_max_per_source: int | None = None,
    ) -> None:
        self.settings = settings
        # At most this many pictures of each source (a fixed spread by id hash): quicker runs.
        self.max_per_source = max_per_source
        # What training (the head and the neighbour bank) may take of each source, when it differs from
        # what is evaluated: None as `max_per_source`, 0 every picture, N the first N of the same spread
        # (so a held-out gallery capped at 500 is a subset of a training side capped at 2,000).
        self.train_max_per_source = max_per_source if train_max_per_source is None else train_max_per_source
        # `backbone`: another network than the settings' (each at its own resolution, the packaged
        # weights); `tta`: feature variants averaged with the clean picture's (test-time augmentation,
        # e.g. ("flip",): the mean of the picture's and its mirror's features and logits).
        name = backbone or settings.backbone
        weights = settings.backbone_weights if name == settings.backbone else None
        self.spec = BackboneSpec(name, str(weights) if weights else None, pool=settings.backbone_pool)
        self.tta = tuple(tta)
        self.cache = self._feature_cache()
        self._texts: dict[tuple[str, str], tuple[TextEncoder, Any]] = {}
        self._classes: dict[tuple[int, ClassPrior], np.ndarray] = {}
        self._targets: dict[tuple[int, str, str], tuple[np.ndarray, np.ndarray]] = {}
        self._load_items = items_loader
        self._spread: dict[str, list[str]] = {}

    def with_backbone(self, backbone: str | None, tta: tuple[str, ...] = ()) -> Workspace:
        """This workspace on another backbone and/or test-time augmentation, sharing its items, text
        encoders, targets and class matrices (none of them depends on the image side)."""
        if (backbone or self.spec.name) == self.spec.name and tuple(tta) == self.tta:
            return self
        other = Workspace(
            self.settings,
            self._load_items,
            self.max_per_source,
            backbone=backbone or self.spec.name,
            tta=tta,
            train_max_per_source=self.train_max_per_source,
        )
        other._texts, other._classes, other._targets, other._spread = (
            self._texts,
            self._classes,
            self._targets,
            self._spread,
        )
        if other.spec == self.spec:  # only the test-time views differ: one network, one cache
            other.cache = self.cache
        return other

    def with_spec(self, spec: BackboneSpec) -> Workspace:
        """This workspace on another backbone spec (a finished bundle's: its network, weights and
        pool), without test-time views, sharing items, text encoders, targets and class matrices."""
        if spec.to_json() == self.spec.to_json() and not self.tta:  # 224 px stated or implied: the same
            return self
        other = copy.copy(self)  # shallow: the shared caches stay shared
        other.spec, other.tta = spec, ()
        other.cache = other._feature_cache()
        return other

    def _feature_cache(self) -> FeatureCache:
        """The on-disk feature cache of this workspace's backbone spec (shared by every process)."""
        return FeatureCache(
            self.settings.home / "cache" / "features",
            self.spec,
            batch_size=self.settings.batch_size,
            backbone_factory=self._backbone,
        )

    @property
    def label(self) -> str:
        """The backbone and test-time augmentation, for report rows: `efficientnet_lite1+flip`."""
        return "+".join((self.spec.name, *self.tta))

    def _backbone(self):
        from jointspace.encoders.backbone import Backbone

        return Backbone(self.spec, device=self.settings.device, threads=self.settings.torch_threads)

    def items(
        self, sources: Sequence[str] | None, split: str | Sequence[str] | None, cap: int | None | bool = True
    ) -> list[Any]:
        """The items of `sources` (None: every prepared one) in `split`, at most `cap` of each source
        (True: `max_per_source`; None or 0: every one)."""
        limit = self.max_per_source if cap is True else cap
        if limit:
            return [
                it
                for s in (sources or self.prepared_sources())
                for it in self._items([s], split)
                if it.post.id in self._kept(s, limit)
            ]
        return self._items(sources, split)

    def training_items(self, source: str) -> list[Any]:
        """Every split of one source as training may take it (`train_max_per_source`)."""
        return self.items([source], None, cap=self.train_max_per_source)

    def _items(self, sources: Sequence[str] | None, split: str | Sequence[str] | None) -> list[Any]:
        if self._load_items is not None:
            return self._load_items(sources, split)
        from jointspace.datasets.prepared import load_items

        return load_items(self.settings.data_dir, sources=sources, split=split)

    def _kept(self, source: str, limit: int) -> set[str]:
        """The ids of `limit` pictures of a source, chosen by a hash of the id (any split): the first
        `limit` of one fixed order, so a smaller spread is part of a larger one."""
        if source not in self._spread:
            self._spread[source] = sorted(
                (it.post.id for it in self._items([source], None)),
                key=lambda i: hashlib.sha1(f"spread:{i}".encode()).hexdigest(),
            )
        return set(self._spread[source][:limit])

    def prepared_sources(self) -> list[str]:
        if self._load_items is not None:
            return sorted({it.post.source or "?" for it in self._load_items(None, None)})
        from jointspace.datasets.prepared import prepared_sources

        return prepared_sources(self.settings.data_dir)

    def outputs(self, items: Sequence[Any], variant: str = "clean") -> CachedOutputs:
        paths = [it.post.image for it in items]
        if variant != "clean" or not self.tta:
            return self.cache.get(paths, variant)
        # Test-time augmentation: the mean of the views' pooled features; the classifier is linear,
        # so the mean of their logits is the logits of that mean.
        views = [self.cache.get(paths, v) for v in ("clean", *self.tta)]
        features = np.stack([v.features for v in views]).mean(axis=0, dtype=np.float32)
        logits = np.stack([v.logits for v in views]).mean(axis=0, dtype=np.float32)
        return CachedOutputs(np.asarray(features), np.asarray(logits))

    def text(
        self, name: str, corpus_items: Sequence[Any] = (), dim: int = 100, seed: int = 0
    ) -> tuple[TextEncoder, Any]:
        """A text encoder by name; word2vec/FastText are trained here on `corpus_items`' captions."""
        key = (name, data_hash(corpus_items) if name in ("word2vec", "fasttext") else "")
        if key not in self._texts:
            from jointspace.registry import TEXT_ENCODERS as GROUP
            from jointspace.registry import load

            if name in ("word2vec", "fasttext"):
                from jointspace.encoders.word_vectors import WordVectorEncoder, train_word_model

                sentences = [caption_words(it.post.caption, it.post.hashtags) + label_words(it) for it in corpus_items]
                model = train_word_model(name, sentences, dim=dim, seed=seed)  # type: ignore[arg-type]  # tested above
                self._texts[key] = (WordVectorEncoder(name, model.wv, embeds_unseen_words=name == "fasttext"), model)
            else:
                self._texts[key] = (load(GROUP, name)({}, self.settings), None)
        return self._texts[key]

    def targets(self, text: TextEncoder, items: Sequence[Any], kind: TargetKind) -> tuple[np.ndarray, np.ndarray]:
        """Training targets, computed once per text encoder, item set and kind (the grid reuses them)."""
        key = (id(text), data_hash(items), kind)
        if key not in self._targets:
            self._targets[key] = build_targets(text, items, kind)
        return self._targets[key]

    def class_matrix(self, text: TextEncoder, prior: ClassPrior | None = None) -> np.ndarray:
        key = (id(text), prior or ClassPrior())
        if key not in self._classes:
            self._classes[key] = class_prompt_matrix(text, key[1])
        return self._classes[key]


def expand_sources(names: Sequence[str]) -> list[str]:
    """Source names with `photos` replaced by the photo sources, in order, without repeats."""
    out: list[str] = []
    for name in names:
        for source in PHOTO_SOURCES if name == PHOTOS else (name,):
            if source not in out:
                out.append(source)
    return out


def part_of(source: str, items: Sequence[Any], part: str) -> list[Any]:
    """The `train`, `val` or `test` part of one source's items: its 40/30/30 part for a photo source
    (`photo_split_of`), else its prepared 80/10/10 split."""
    if source in PHOTO_SOURCES:
        return photo_part(items, part)
    return [it for it in items if it.split == part]


def source_part(ws: Workspace, source: str, part: str) -> list[Any]:
    return part_of(source, ws.items([source], None), part)


def training_items(ws: Workspace, options: RunOptions) -> list[Any]:
    """The train part of every prepared training source; with `limit`, the first N, photos first (they are scarce)."""
    prepared = ws.prepared_sources()
    names = [p for entry in options.train_sources for p in (prepared if entry == ALL else (entry,))]
    sources = [s for s in expand_sources(names) if s in prepared or s not in PHOTO_SOURCES]

    def parts(s: str) -> list[Any]:
        everything = ws.training_items(s)
        return [it for part in options.parts for it in part_of(s, everything, part)]

    drawings = [it for s in sources if s not in PHOTO_SOURCES for it in parts(s)]
    photos = [it for s in sources if s in PHOTO_SOURCES for it in parts(s)]
    return (photos + drawings)[: options.limit]


def validation_sets(ws: Workspace, options: RunOptions) -> tuple[list[tuple[str, list[Any]]], str]:
    """One (name, items) set per entry of `val_sources` that is prepared (`photos`: the val part of the
    photo sources), and a description for reports. A non-photo source that is trained on is skipped:
    its val split would praise heads that do not generalise to other sources."""
    if not options.val_sources:
        return [], f"none: {options.train.epochs} epochs, zero-training weight {options.zeroshot_weight:g}"
    prepared = set(ws.prepared_sources())
    trained = set(expand_sources(options.train_sources))
    sets: list[tuple[str, list[Any]]] = []
    descs: list[str] = []
    for entry in options.val_sources:
        members = [s for s in expand_sources([entry]) if s in prepared and (s in PHOTO_SOURCES or s not in trained)]
        items = [it for s in members for it in source_part(ws, s, "val")]
        if items:
            sets.append((entry, items))
            seen = any(s in trained for s in members)
            descs.append(
                f"{entry} (val {'part' if any(s in PHOTO_SOURCES for s in members) else 'split'}"
                f"{' of ' + ', '.join(members) if entry == PHOTOS else ''}, {len(items)} images, "
                f"{'other images of a source trained on' if seen else 'a source not trained on'})"
            )
    if sets:
        what = "mean of " if len(sets) > 1 else ""
        return sets, f"{what}{'; '.join(descs)}"
    fallback = [it for s in expand_sources(options.train_sources) if s in prepared for it in source_part(ws, s, "val")]
    return [("val", fallback)], "held-out val split of the training sources"


# Fewer validation pictures than this and single-keyword P@10 moves in coarse steps: the epoch and
# the ensemble weight it chooses are noise.
MIN_VALIDATION_IMAGES = 30


def check_validation(ws: Workspace, options: RunOptions, chosen: bool) -> str | None:
    """None when validation has at least MIN_VALIDATION_IMAGES pictures. Below: a ConfigurationError
    when the validation sets are the defaults (they are missing, not chosen: say what to prepare),
    else the warning to print (the user named them; their choice stands)."""
    sets, description = validation_sets(ws, options)
    count = sum(len(items) for _, items in sets)
    if count >= MIN_VALIDATION_IMAGES:
        return None
    first = expand_sources(options.train_sources)[0] if options.train_sources else "SOURCE"
    message = (
        f"validation would use only {count} pictures ({description}), fewer than "
        f"{MIN_VALIDATION_IMAGES}: the epoch and the ensemble weight it picks would be noise"
    )
    if chosen:
        return message
    raise ConfigurationError(
        f"{message}. Prepare the default validation sets (`jointspace data prepare`, "
        f"which makes tuxpaint and the photos), or name larger ones with "
        f"--val-sources (e.g. `--val-sources {first}`: the val split of {first!r})"
    )


def train_one(ws: Workspace, options: RunOptions, progress: bool = True, checkpoint: Path | None = None) -> TrainedHead:
    """Train one head (features cached once per process and on disk) and choose its ensemble weight.

    With validation sets, the best epoch and the blend weight are chosen on them; without
    (`val_sources` empty), the head trains every epoch and takes `options.zeroshot_weight`."""
    train_items = training_items(ws, options)
    if len(train_items) < 2:
        raise ConfigurationError(
            f"no training items in {', '.join(options.train_sources)}; run `jointspace data prepare` first"
        )
    val_sets, val_desc = validation_sets(ws, options)
    text, word_model = ws.text(options.text, train_items, options.word_model_dim, options.train.seed)
    classes = ws.class_matrix(text, options.prior)
    targets, usable = ws.targets(text, train_items, options.targets)
    if options.prior_target_weight > 0:
        prior = zeroshot_vectors(ws.outputs(train_items).logits, classes, ws.settings.zeroshot_top_k)
        a = options.prior_target_weight
        targets = np.where(usable[:, None], unit_rows((1 - a) * targets + a * prior), targets)
    variants = [ws.outputs(train_items, v).features[usable] for v in ("clean", *options.augment)]

    neighbours = None
    if options.neighbour_weight > 0:
        neighbours = NeighbourBank.fit(variants[0], targets[usable], options.neighbour_k, options.neighbour_temperature)

    def trained(result: TrainResult, weight: float, val_scores: dict[str, Any]) -> TrainedHead:
        return TrainedHead(
            options,
            text,
            result,
            weight,
            val_scores,
            classes,
            word_model,
            data_hash(train_items),
            int(usable.sum()),
            max_per_source=ws.train_max_per_source or None,
            data_sources=tuple(sorted({it.post.source or "?" for it in train_items})),
            neighbours=neighbours,
        )

    if not val_sets:
        result = train_head(variants, targets[usable], options.train, None, checkpoint, progress, keep_last=True)
        w = options.zeroshot_weight
        return trained(result, w, {f"{w:g}": float("nan"), "zeroshot": float("nan"), "validation": val_desc})
    scorers = [
        GalleryScorer(Gallery(name, items).with_queries(min_images=3, compounds=False, seeds=False), text)
        for name, items in val_sets
    ]
    keep = [i for i, sc in enumerate(scorers) if (sc.kinds == "keyword").any()]
    if keep:  # a set without keyword queries would only add a 0 to the mean
        val_sets, scorers = [val_sets[i] for i in keep], [scorers[i] for i in keep]
    val_outs = [ws.outputs(items) for _, items in val_sets]

    def validate(head: ProjectionHead) -> float:
        """Mean single-keyword P@10 over the validation sets (drawings and photos weigh the same)."""
        return float(
            np.mean([sc.keyword_p10(run_head(head, o.features)) for sc, o in zip(scorers, val_outs, strict=True)])
        )

    result = train_head(variants, targets[usable], options.train, validate, checkpoint, progress)
    per_set: dict[str, dict[str, float]] = {}
    for (name, _), sc, o in zip(val_sets, scorers, val_outs, strict=True):
        head_vecs = run_head(result.head, o.features)
        zs_vecs = zeroshot_vectors(o.logits, classes, ws.settings.zeroshot_top_k)
        per_set[name] = {f"{w:g}": sc.keyword_p10(ensemble(head_vecs, zs_vecs, w)) for w in ENSEMBLE_WEIGHTS}
        per_set[name]["zeroshot"] = sc.keyword_p10(zs_vecs)
    keys = [*(f"{w:g}" for w in ENSEMBLE_WEIGHTS), "zeroshot"]
    scores: dict[str, Any] = {k: float(np.mean([s[k] for s in per_set.values()])) for k in keys}
    # Ties (common: P@10 moves in steps of 0.1 per query) go to the smaller weight, closer to the trained head.
    best_w = max(ENSEMBLE_WEIGHTS, key=lambda w: (round(scores[f"{w:g}"], 6), -w))
    log.info("validation on %s: %s", val_desc, json.dumps(per_set))
    return trained(result, best_w, {**scores, "sets": per_set, "validation": val_desc})


def with_loss(options: RunOptions, loss: str, text: str, targets: str, epochs: int | None = None) -> RunOptions:
    # loss and targets: strs the callers (CLI, LOSO grid) take from the Literals' own lists
    train = replace(options.train, loss=loss, epochs=epochs or options.train.epochs)  # type: ignore[arg-type]  # see above
    return replace(options, text=text, targets=targets, train=train)  # type: ignore[arg-type]  # as loss
