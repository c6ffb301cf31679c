"""What the leave-one-source-out bench scripts of issue 13 share: the command line, each fold trained
the way the product trains (`train_one` on every picture of the other sources, `DEFAULT_RUN`) with
the default's three vectors on the held-out gallery, scoring, and the summary table."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from jointspace.encoders.evaluation.core import paired_by_source
from jointspace.encoders.evaluation.loso import HeldOut, fold_options, source_mean
from jointspace.encoders.image_encoders import run_head, zeroshot_vectors
from jointspace.encoders.knn import blend
from jointspace.encoders.training_runs import DEFAULT_RUN, RunOptions, TrainedHead, Workspace, train_one, training_items

from jointspace.settings import Settings, get_settings

BASELINE = "zero-training (wordnet prior)"
DEFAULT = "default"
# The default's blend weights: (head, neighbours, zero-training).
NW, ZW = DEFAULT_RUN.neighbour_weight, DEFAULT_RUN.zeroshot_weight
HW = 1 - NW - ZW


def onnx_session(network: Any, size: int, outputs: list[str]) -> Any:
    """An ONNX Runtime session of `network` (images (n, 3, size, size) → `outputs`), for the bench
    scripts that read other parts of the backbone than the product's pooled output."""
    import tempfile

    import onnxruntime as ort
    import torch

    with tempfile.TemporaryDirectory() as folder, torch.no_grad():
        path = Path(folder) / "network.onnx"
        torch.onnx.export(
            network.eval(),
            (torch.zeros(2, 3, size, size),),
            path,
            input_names=["images"],
            output_names=outputs,
            dynamic_axes={"images": {0: "n"}, **{o: {0: "n"} for o in outputs}},
            opset_version=17,
            dynamo=False,
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        return ort.InferenceSession(path.read_bytes(), options, providers=["CPUExecutionProvider"])


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def parser(description: str | None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=(description or "").splitlines()[0])
    ap.add_argument("--max-per-source", type=int, default=500, help="the held-out galleries' cap")
    ap.add_argument("--train-max-per-source", type=int, default=0, help="training cap per source (0: all)")
    ap.add_argument("--sources", nargs="*", default=None, help="the sources taking part [every prepared one]")
    ap.add_argument("--out", type=Path, default=None, help="per-query figures of every row, as JSON")
    return ap


def workspace(args: argparse.Namespace) -> tuple[Settings, Workspace, list[str]]:
    settings = get_settings()
    ws = Workspace(settings, max_per_source=args.max_per_source, train_max_per_source=args.train_max_per_source)
    return settings, ws, list(args.sources or ws.prepared_sources())


@dataclass
class Fold:
    """One held-out source: the default trained on the others, and its parts on the held-out gallery."""

    source: str
    options: RunOptions
    trained: TrainedHead
    items: list[Any]  # the training side, in `training_items` order
    gallery: HeldOut
    head: np.ndarray  # the ridge head's vectors of the gallery's pictures (not normalised)
    near: np.ndarray  # the nearest training pictures' vectors
    zs: np.ndarray  # the zero-training vectors
    rows: dict[str, dict[str, Any]]

    @property
    def default(self) -> np.ndarray:
        """The shipped blend: one vector a picture."""
        return blend(self.head, self.zs, ZW, self.near, NW)

    def add(self, row: str, vectors: np.ndarray) -> None:
        """Scores a row's picture vectors on this fold's gallery."""
        self.rows.setdefault(row, {})[self.source] = self.gallery.score(vectors, self.trained.text)


def folds(ws: Workspace, names: list[str], settings: Settings, rows: dict[str, dict[str, Any]]) -> Iterator[Fold]:
    """Trains each fold in turn, scores zero-training and the default into `rows`, and yields it."""
    started = time.perf_counter()
    for s in names:
        opts = fold_options(DEFAULT_RUN, [o for o in names if o != s])
        trained = train_one(ws, opts, progress=False)
        assert trained.neighbours is not None, "the default carries a neighbour bank"
        g = HeldOut(ws, s)
        feats, logits = g.outputs.features, g.outputs.logits
        fold = Fold(
            s,
            opts,
            trained,
            training_items(ws, opts),
            g,
            run_head(trained.result.head, feats),
            trained.neighbours.vectors(feats),
            zeroshot_vectors(logits, trained.class_matrix, settings.zeroshot_top_k),
            rows,
        )
        fold.add(BASELINE, fold.zs)
        fold.add(DEFAULT, fold.default)
        yield fold
        log(f"{s}: fold done ({time.perf_counter() - started:.0f} s)")


def print_table(rows: dict[str, dict[str, Any]], names: list[str]) -> None:
    """A markdown table: per source P@10, the mean, its ratio to zero-training, sources above it,
    the paired difference against the default, rare-word R@10 and its difference against zero-training."""
    base, default = rows[BASELINE], rows[DEFAULT]
    bmean = source_mean(base, "p10") or float("nan")
    print("| row | " + " | ".join(names) + " | mean | × zero | > 0 | vs default | R@10 | R@10 vs zero |")
    print("| --- |" + " ---: |" * (len(names) + 6))
    for name, res in rows.items():
        mean = source_mean(res, "p10")
        mean = float("nan") if mean is None else mean
        vz = paired_by_source(res, base, "p10")
        vd = paired_by_source(res, default, "p10")
        rz = paired_by_source(res, base, "r10")
        cells = " | ".join(f"{res[s]['p10']:.3f}" if res[s]["p10"] is not None else "–" for s in names)
        print(
            f"| {name} | {cells} | {mean:.3f} | {mean / bmean:.2f} | {vz['above']} |"
            f" {vd['diff']:+.3f} [{vd['low']:+.3f}, {vd['high']:+.3f}] | {source_mean(res, 'r10') or 0:.3f} |"
            f" {rz['diff']:+.3f} [{rz['low']:+.3f}, {rz['high']:+.3f}] |"
        )


def finish(rows: dict[str, dict[str, Any]], names: list[str], out: Path | None) -> None:
    print_table(rows, names)
    if out:
        out.write_text(json.dumps(rows), encoding="utf-8")
        log(f"wrote {out}")
