"""`jointspace eval`: every configuration measured in one run, on the same galleries and queries.

Galleries: the test split of each source the heads train or validate on; the *test part* (30 % by id
hash, `photo_split_of`) of each photo source, whose train part heads may train on and whose val part
takes part in selection; *all* items of any other source no head ever saw; and `photos`, the union
of the photo sources' test parts. Configurations: a random ranking, the zero-training baseline, the
bundle under test, any bundles to compare with and, with `--grid`, a head per text encoder × loss
(× target kind), each alone and as an ensemble with the baseline. The grid's winner is chosen on
validation (never on the test galleries), then its test figures are reported beside the rest.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from jointspace.encoders.bundle import load_bundle
from jointspace.encoders.evaluation.core import Gallery, GalleryScorer, bundle_vectors
from jointspace.encoders.evaluation.report import write_report
from jointspace.encoders.image_encoders import zeroshot_vectors
from jointspace.encoders.imagenet import DEFAULT_PRIOR, ClassPrior
from jointspace.encoders.training import TrainConfig
from jointspace.encoders.training_runs import (
    PHOTO_SOURCES,
    PHOTOS,
    RunOptions,
    TrainedHead,
    Workspace,
    expand_sources,
    part_of,
    train_one,
    validation_sets,
    with_loss,
)

from jointspace.choices import LOSSES, TRAINABLE_TEXT_ENCODERS
from jointspace.protocols import TextEncoder
from jointspace.settings import Settings

log = logging.getLogger(__name__)


def gallery_split(name: str, train_sources: Sequence[str], val_sources: Sequence[str]) -> str:
    """What part of a source a gallery holds, in words, for the report."""
    trained, validated = expand_sources(train_sources), expand_sources(val_sources)
    members = PHOTO_SOURCES if name == PHOTOS else (name,)
    if name == PHOTOS or name in PHOTO_SOURCES:
        seen = [s for s in members if s in trained]
        uses = ("train part trained on" if seen else "never trained on") + (
            "; val part validates" if any(s in validated for s in members) else ""
        )
        return f"test part, 30 % by id hash ({uses})"
    if name in trained:
        return "test (train split trained on)"
    if name in validated:
        return "test (never trained on; val split validates)"
    return "all (never trained on)"


def build_galleries(
    ws: Workspace, train_sources: Sequence[str], val_sources: Sequence[str] = (), min_images: int = 50
) -> list[Gallery]:
    """One gallery per source of at least `min_images` items in all (smaller ones only inside `photos`),
    holding its test part (`gallery_split`)."""
    seen = {*expand_sources(train_sources), *expand_sources(val_sources)}
    galleries: list[Gallery] = []
    photos: list[Any] = []
    for source in ws.prepared_sources():
        everything = ws.items([source], None)
        items = part_of(source, everything, "test") if source in PHOTO_SOURCES or source in seen else everything
        if source in PHOTO_SOURCES:
            photos.extend(items)
        if len(everything) >= min_images:
            galleries.append(Gallery(source, items).with_queries())
    if photos and sum(g.name in PHOTO_SOURCES for g in galleries) != 1:
        galleries.append(Gallery(PHOTOS, photos).with_queries())
    return [g for g in galleries if g.queries]


class Evaluator:
    def __init__(self, ws: Workspace, galleries: list[Gallery]) -> None:
        self.ws = ws
        self.galleries = galleries
        self.outputs = {g.name: ws.outputs(g.items) for g in galleries}
        self._scorers: dict[tuple[str, int], GalleryScorer] = {}
        self.rows: list[dict[str, Any]] = []

    def scorer(self, gallery: Gallery, text: TextEncoder) -> GalleryScorer:
        key = (gallery.name, id(text))
        if key not in self._scorers:
            self._scorers[key] = GalleryScorer(gallery, text)
        return self._scorers[key]

    def add(
        self,
        name: str,
        kind: str,
        text: TextEncoder,
        vectors: dict[str, np.ndarray] | None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        results = {}
        for g in self.galleries:
            if vectors is None:  # random ranking
                results[g.name] = self.scorer(g, text).random()
            else:
                results[g.name] = self.scorer(g, text).score(vectors[g.name])
        row = {"name": name, "kind": kind, "text": getattr(text, "name", None), "results": results, **(extra or {})}
        self.rows.append(row)
        log.info(
            "%-45s keyword P@10 %s",
            name,
            "  ".join(f"{g}={r['keyword']['p10']:.3f}" for g, r in results.items() if "keyword" in r),
        )
        return row

    def zeroshot(self, text: TextEncoder, prior: ClassPrior | None = None) -> dict[str, np.ndarray]:
        classes = self.ws.class_matrix(text, prior)
        k = self.ws.settings.zeroshot_top_k
        return {n: zeroshot_vectors(o.logits, classes, k) for n, o in self.outputs.items()}

    def head(self, trained: TrainedHead, weight: float) -> dict[str, np.ndarray]:
        out = {}
        for n, o in self.outputs.items():
            out[n] = trained.vectors(o.features, o.logits, self.ws.settings.zeroshot_top_k, weight)
        return out

    def bundle(self, path: Path | None) -> None:
        b = load_bundle(path, self.ws.settings)
        image = b.image
        vectors = bundle_vectors(self.ws, image, {g.name: g.items for g in self.galleries}, self.outputs)
        training = b.manifest.get("training") or {}
        trained_on = ", ".join(training.get("sources") or []) or "?"
        # The folder names the bundle: several bundles of one configuration (seeds, sources) share `b.name`.
        self.add(
            f"bundle {b.path.name} (trained on {trained_on})",
            "bundle",
            b.text,
            vectors,
            {
                "bundle": str(b.path),
                "loss": b.manifest.get("loss"),
                "targets": b.manifest.get("targets"),
                "history": training.get("history"),
                "zeroshot_weight": b.manifest["image"].get("config", {}).get("zeroshot_weight"),
            },
        )


def run_evaluation(
    settings: Settings,
    folder: Path,
    bundle: Path | None = None,
    grid: bool = False,
    train_sources: Sequence[str] = ("openclipart", PHOTOS),
    val_sources: Sequence[str] = ("tuxpaint", PHOTOS),
    grid_epochs: int = 40,
    workspace: Workspace | None = None,
    grid_texts: Sequence[str] = TRAINABLE_TEXT_ENCODERS,
    grid_losses: Sequence[str] = LOSSES,
    limit: int | None = None,
    augment: Sequence[str] | None = None,
    min_gallery_images: int = 50,
    compare: Sequence[Path] = (),
) -> dict[str, Any]:
    """Evaluate, write the report folder (JSON, markdown, PNG) and return the report as a dict."""
    started = time.perf_counter()
    ws = workspace or Workspace(settings)
    galleries = build_galleries(ws, train_sources, val_sources, min_gallery_images)
    ev = Evaluator(ws, galleries)
    minilm, _ = ws.text("minilm")
    ev.add("random ranking", "random", minilm, None)
    ev.add("zero-training (minilm)", "zeroshot", minilm, ev.zeroshot(minilm))
    ev.add("zero-training (minilm, WordNet prior)", "zeroshot", minilm, ev.zeroshot(minilm, DEFAULT_PRIOR))
    ev.bundle(bundle)
    for other in compare:
        ev.bundle(other)
    winner = None
    if grid:
        base = RunOptions(
            train=TrainConfig(epochs=grid_epochs),
            train_sources=tuple(train_sources),
            val_sources=tuple(val_sources),
            limit=limit,
        )
        if augment is not None:
            base = replace(base, augment=tuple(augment))
        combos = [(t, loss, "word") for t in grid_texts for loss in grid_losses]
        if "minilm" in grid_texts:
            combos += [("minilm", loss, "sentence") for loss in grid_losses]
        best_val = -1.0
        for text_name, loss, targets in combos:
            trained = train_one(ws, with_loss(base, loss, text_name, targets), progress=False)
            if text_name != "minilm" and targets == "word" and loss == grid_losses[0]:
                ev.add(f"zero-training ({text_name})", "zeroshot", trained.text, ev.zeroshot(trained.text))
            label = trained.label
            common = {
                "loss": loss,
                "targets": targets,
                "history": trained.result.history,
                "val": trained.val_scores,
                "seconds": trained.result.seconds,
            }
            ev.add(f"head {label}", "head", trained.text, ev.head(trained, 0.0), common)
            w = trained.zeroshot_weight
            val = trained.val_scores[f"{w:g}"]
            ev.add(
                f"ensemble {label} (w={w:g})",
                "ensemble",
                trained.text,
                ev.head(trained, w),
                {**common, "zeroshot_weight": w},
            )
            if val > best_val:
                best_val, winner = (
                    val,
                    {
                        "text": text_name,
                        "loss": loss,
                        "targets": targets,
                        "zeroshot_weight": w,
                        "validation_keyword_p10": val,
                        "validation": trained.val_scores.get("validation"),
                    },
                )
    report = {
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seconds": round(time.perf_counter() - started, 1),
        "train_sources": list(train_sources),
        "val_sources": list(val_sources),
        "validation": validation_sets(
            ws, RunOptions(train_sources=tuple(train_sources), val_sources=tuple(val_sources))
        )[1],
        "grid": {"epochs": grid_epochs, "limit": limit, "augment": list(augment) if augment is not None else None}
        if grid
        else None,
        "galleries": {
            g.name: {
                "images": len(g.items),
                "queries": {k: sum(q.kind == k for q in g.queries) for k in ("keyword", "compound", "seed")},
                "split": gallery_split(g.name, train_sources, val_sources),
            }
            for g in galleries
        },
        "configurations": ev.rows,
        "winner": winner,
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report, indent=1, default=float), encoding="utf-8")
    write_report(report, folder)
    return report
