"""`jointspace train --from-index`: a head trained on the captioned posts already indexed.

The workers keep every post's image features beside the index (backends/kept_features.py), so
training needs no prepared data and decodes no picture: the kept features are the inputs, the
post's caption words and hashtags the targets (the `word` targets of `jointspace train`), and the
head is trained by the same `train_head` and written by the same `save_trained`.

Validation holds posts out, either the newest `holdout_share` of the kept posts (a held-out time
slice: the stream's future) or every post of one source (leave one source out). The held-out posts
are split in two by a hash of the id: one half chooses the epoch and the blend weight of the
zero-training vector, the other is scored, so the reported figures are not the ones that chose.
On that half, in the same run: the zero-training vector, the current bundle (the vectors in the
index) and the new head, as single-keyword P@10 (words that label at least 3 held-out pictures).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from jointspace.encoders.bundle_writer import save_trained
from jointspace.encoders.evaluation.core import Gallery, GalleryScorer
from jointspace.encoders.image_encoders import class_prompt_matrix, ensemble, run_head, zeroshot_vectors
from jointspace.encoders.imagenet import DEFAULT_PRIOR
from jointspace.encoders.targets import build_targets
from jointspace.encoders.training import TrainConfig, train_head
from jointspace.encoders.training_runs import ENSEMBLE_WEIGHTS, RunOptions, TrainedHead
from jointspace.encoders.words import caption_words

from jointspace.errors import ConfigurationError
from jointspace.protocols import FeatureImageEncoder, ModelBundle, SearchBackend
from jointspace.records import Post
from jointspace.settings import Settings

log = logging.getLogger(__name__)

TIME = "time"  # holdout: the newest kept posts
MIN_QUERY_IMAGES = 3  # a held-out word is a query when it labels at least this many pictures


@dataclass(frozen=True)
class FromIndexOptions:
    since: datetime | None = None  # only posts kept (ingested) at or after this time
    holdout: str = TIME  # "time", or a source name: that source's posts are held out
    holdout_share: float = 0.2  # with "time": the newest share of the kept posts
    train: TrainConfig = field(default_factory=TrainConfig)
    text: str = "minilm"


@dataclass(frozen=True, slots=True)
class IndexedItem:
    """An indexed post as a training item (the `Labelled` protocol): its caption words are its labels."""

    post: Post
    keywords: tuple[str, ...]
    split: str  # train | val | test
    category: str = ""


@dataclass
class FromIndexReport:
    folder: Path
    bundle: str
    current: str
    posts: int  # captioned indexed posts with kept features
    trained_on: int
    held_out: str  # what was held out, in words
    val_posts: int
    test_posts: int
    queries: int
    p10: dict[str, float]  # zero-training, current bundle, new head on the scored half
    zeroshot_weight: float
    best_epoch: int

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle": str(self.folder),
            "name": self.bundle,
            "current_bundle": self.current,
            "posts": self.posts,
            "trained_on": self.trained_on,
            "held_out": self.held_out,
            "validation_posts": self.val_posts,
            "scored_posts": self.test_posts,
            "queries": self.queries,
            "keyword_p10": self.p10,
            "zeroshot_weight": self.zeroshot_weight,
            "best_epoch": self.best_epoch,
        }


def _half(post_id: str) -> str:
    """val or test, by a hash of the id: the same on every run."""
    return "val" if hashlib.sha1(f"holdout:{post_id}".encode()).digest()[0] % 2 == 0 else "test"


def collect_items(
    backend: SearchBackend, kept_order: Sequence[str], options: FromIndexOptions
) -> tuple[list[IndexedItem], str]:
    """Indexed posts that have kept features and caption words, each marked train/val/test, and a
    description of the holdout. `kept_order`: the kept post ids, oldest first."""
    rank = {pid: i for i, pid in enumerate(kept_order)}
    posts: list[Post] = []
    for doc in backend.iter_documents():
        if doc.id in rank and caption_words(doc.post.caption, doc.post.hashtags):
            posts.append(doc.post)
    posts.sort(key=lambda p: rank[p.id])
    if options.holdout == TIME:
        n_out = max(2, int(round(len(posts) * options.holdout_share)))
        held = {p.id for p in posts[len(posts) - n_out :]}
        what = f"the newest {len(held)} of {len(posts)} kept posts (a time slice)"
    else:
        sources = sorted({p.source or "" for p in posts})
        held = {p.id for p in posts if p.source == options.holdout}
        if not held:
            raise ConfigurationError(
                f"--holdout {options.holdout!r}: no indexed post with kept features comes from that source "
                f"(sources: {', '.join(s or '(none)' for s in sources)}); or use --holdout time"
            )
        what = f"source {options.holdout!r} ({len(held)} posts; leave one source out)"
    items = [
        IndexedItem(
            post=p,
            keywords=tuple(caption_words(p.caption, p.hashtags)),
            split=_half(p.id) if p.id in held else "train",
        )
        for p in posts
    ]
    return items, what


def train_from_index(
    settings: Settings,
    bundle: ModelBundle,
    backend: SearchBackend,
    kept: Any,
    options: FromIndexOptions,
    out: Path,
    make_latest: bool = True,
    progress: bool = True,
) -> FromIndexReport:
    """Trains, scores and writes a bundle to `out`. `bundle`: the one that built the index (its
    backbone made the kept features; the new head shares it). Blocks for the training (seconds to
    minutes on CPU). Raises ConfigurationError when there is too little to train or to validate."""
    image = bundle.image
    if not isinstance(image, FeatureImageEncoder):
        raise ConfigurationError(
            f"bundle {bundle.name!r} has no separate backbone and head ({image.name!r}): "
            "there are no kept image features to train a head on"
        )
    since = options.since.timestamp() if options.since else None
    order = [k.post_id for k in kept.kept(since)]
    items, held_out = collect_items(backend, order, options)
    train = [it for it in items if it.split == "train"]
    val = [it for it in items if it.split == "val"]
    test = [it for it in items if it.split == "test"]
    if len(train) < 10 or len(val) < 2 or len(test) < 2:
        raise ConfigurationError(
            f"train --from-index needs at least 10 captioned posts to train on and 4 to hold out; "
            f"the index has {len(items)} captioned posts with kept features"
            f"{' since ' + options.since.isoformat() if options.since else ''} "
            f"({len(train)} to train on, {len(val) + len(test)} held out): ingest more posts first"
        )
    features = kept.get_many([it.post.id for it in items])
    feats = {pid: np.asarray(f, np.float32) for pid, f in features.items()}

    def matrix(part: Sequence[IndexedItem]) -> np.ndarray:
        return np.stack([feats[it.post.id] for it in part])

    from jointspace.registry import TEXT_ENCODERS, load

    text = load(TEXT_ENCODERS, options.text)({}, settings)
    classes = class_prompt_matrix(text, DEFAULT_PRIOR)
    targets, usable = build_targets(text, train, "word")
    if usable.sum() < 10:
        raise ConfigurationError(f"only {int(usable.sum())} posts have caption words the text encoder knows")
    backbone = image.backbone  # type: ignore[attr-defined]  # a CNN-backed bundle's encoder
    (val_x, val_logits), (test_x, test_logits) = backbone.split(matrix(val)), backbone.split(matrix(test))
    val_zs = zeroshot_vectors(val_logits, classes, settings.zeroshot_top_k)
    test_zs = zeroshot_vectors(test_logits, classes, settings.zeroshot_top_k)
    val_scorer = GalleryScorer(Gallery("val", val).with_queries(MIN_QUERY_IMAGES, False, False), text)
    test_scorer = GalleryScorer(Gallery("test", test).with_queries(MIN_QUERY_IMAGES, False, False), text)
    if not (val_scorer.kinds == "keyword").any() or not (test_scorer.kinds == "keyword").any():
        raise ConfigurationError(
            f"the held-out posts ({held_out}) share no caption word among {MIN_QUERY_IMAGES}+ pictures "
            "in each half: nothing to validate on; hold out more (--holdout-share) or ingest more posts"
        )

    def validate(head: Any) -> float:
        return val_scorer.keyword_p10(run_head(head, val_x))

    train_x = backbone.head_part(matrix(train))
    result = train_head([train_x[usable]], targets[usable], options.train, validate, None, progress)
    val_head = run_head(result.head, val_x)
    # Ties go to the smaller weight, closer to the trained head (as `jointspace train`).
    weight = max(ENSEMBLE_WEIGHTS, key=lambda w: (round(val_scorer.keyword_p10(ensemble(val_head, val_zs, w)), 6), -w))
    current = backend.get_many([it.post.id for it in test], with_vector=True)
    current_vecs = np.stack([current[it.post.id].vector for it in test])
    current_scorer = GalleryScorer(Gallery("test", test).with_queries(MIN_QUERY_IMAGES, False, False), bundle.text)
    p10 = {
        "zero_training": test_scorer.keyword_p10(test_zs),
        "current_bundle": current_scorer.keyword_p10(current_vecs),
        "new_head": test_scorer.keyword_p10(ensemble(run_head(result.head, test_x), test_zs, weight)),
    }
    run = RunOptions(
        text=options.text,
        targets="word",
        train=options.train,
        train_sources=("index",),
        val_sources=(held_out,),
        prior=DEFAULT_PRIOR,
    )
    # The manifest's `training.validation` is read from here (a description beside the scores).
    scores: dict[str, Any] = {"validation": f"{held_out}, half of them by id hash", **p10}
    trained = TrainedHead(
        run,
        text,
        result,
        weight,
        scores,
        classes,
        None,
        hashlib.sha1("\n".join(sorted(it.post.id for it in train)).encode()).hexdigest()[:16],
        int(usable.sum()),
    )
    spec = image.backbone_spec
    # The new bundle records the backbone that made the kept features, so a reindex can reuse them.
    same_backbone = replace_backbone(settings, spec)
    metrics = {"from_index": {"held_out": held_out, "keyword_p10_scored_half": p10, "scored_posts": len(test)}}
    folder = save_trained(trained, out, same_backbone, metrics=metrics, make_latest=make_latest)
    from jointspace.encoders.bundle import read_manifest

    return FromIndexReport(
        folder,
        read_manifest(folder)["name"],
        bundle.name,
        len(items),
        int(usable.sum()),
        held_out,
        len(val),
        len(test),
        int((test_scorer.kinds == "keyword").sum()),
        p10,
        weight,
        result.best_epoch,
    )


def replace_backbone(settings: Settings, spec: dict[str, object]) -> Settings:
    weights = spec.get("weights")
    return settings.model_copy(
        update={
            "backbone": str(spec.get("name") or settings.backbone),
            "backbone_weights": weights or None,
            "backbone_pool": str(spec.get("pool") or "avg"),  # a spec without one is average-pooled
        }
    )
