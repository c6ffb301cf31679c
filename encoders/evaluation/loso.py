"""Leave-one-source-out (LOSO) evaluation: how a configuration does on pictures from a source it never saw.

For each held-out source S, the candidate configuration trains on *all* pictures of every other
prepared source (no validation split: fixed epochs and blend weight, which are part of the
candidate) and is scored on *all* of S's pictures, image vectors only (captions are never read),
beside the zero-training baselines on the same gallery in the same run:
- single-keyword P@10 for every label word with at least 5 pictures in S;
- recall@10 and reciprocal rank for words that label 1 to 4 pictures of S (the "find the picture of
  a cow" case, where P@10 cannot exceed the few pictures there are).
Sources weigh the same in the mean. A candidate's blend weights cost no training (the head's and
the zero-training vectors are blended after the fact), so each is a row of its own.

Every choice of the default is made on these means, never on a split of a source trained on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from jointspace.encoders.evaluation.core import (
    bundle_vectors,
    paired_bootstrap,
    query_matrix,
    stratified_bootstrap,
)
from jointspace.encoders.evaluation.expansion import Expansion, expanded_scores
from jointspace.encoders.evaluation.queries import Query, gallery_labels, keyword_queries, rare_queries, relevant_mask
from jointspace.encoders.image_encoders import run_head, zeroshot_vectors
from jointspace.encoders.imagenet import ClassPrior
from jointspace.encoders.knn import blend
from jointspace.encoders.training_runs import DEFAULT_RUN, RunOptions, Workspace, train_one
from tqdm import tqdm

from jointspace.errors import ConfigurationError
from jointspace.protocols import TextEncoder

log = logging.getLogger(__name__)

ALL_PARTS = ("train", "val", "test")
KEYWORD_MIN_IMAGES = 5
RARE_MAX_IMAGES = 4


@dataclass(frozen=True)
class Candidate:
    """A configuration to train in every fold; each blend weight in `weights` becomes one row."""

    name: str
    options: RunOptions = field(default_factory=RunOptions)
    weights: tuple[float, ...] = (0.2,)
    # The image side: a backbone other than the settings' (None: the settings'), and the feature
    # variants averaged with the clean picture's (test-time augmentation, e.g. ("flip",)).
    backbone: str | None = None
    tta: tuple[str, ...] = ()


@dataclass
class QuerySet:
    """One gallery's queries of one kind, embedded by one text encoder."""

    queries: list[Query]
    vectors: np.ndarray  # (Q, dim) unit rows
    embeddable: np.ndarray  # (Q,) bool: a query the encoder cannot embed scores 0
    relevant: np.ndarray  # (Q, N) bool

    @classmethod
    def build(cls, text: TextEncoder, queries: list[Query], labels: Sequence[frozenset[str]]) -> QuerySet:
        vecs, ok = query_matrix(text, queries)
        rel = np.array([relevant_mask(q, labels) for q in queries], bool).reshape(len(queries), len(labels))
        return cls(queries, vecs, ok, rel)


def ranks_of_relevant(scores: np.ndarray, relevant: np.ndarray) -> list[np.ndarray]:
    """Per query, the 1-based ranks of its relevant pictures (ties broken by gallery order)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    hits = np.take_along_axis(relevant, order, axis=1)
    return [np.flatnonzero(row) + 1 for row in hits]


def query_scores(vectors: np.ndarray, qs: QuerySet, expansion: Expansion | None = None) -> np.ndarray:
    """(Q, N) scores of the gallery for the query set (after query expansion from the gallery when given)."""
    return expanded_scores(qs.vectors, vectors, expansion or Expansion())


def keyword_p10(vectors: np.ndarray, qs: QuerySet, expansion: Expansion | None = None) -> np.ndarray:
    """Per-query P@10 (0 for a query the encoder cannot embed)."""
    if not qs.queries:
        return np.zeros(0)
    ranks = ranks_of_relevant(query_scores(vectors, qs, expansion), qs.relevant)
    p10 = np.array([(r <= 10).sum() / 10 for r in ranks])
    return np.where(qs.embeddable, p10, 0.0)


def rare_recall_rr(
    vectors: np.ndarray, qs: QuerySet, expansion: Expansion | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-query recall@10 and reciprocal rank of the first relevant picture."""
    if not qs.queries:
        return np.zeros(0), np.zeros(0)
    ranks = ranks_of_relevant(query_scores(vectors, qs, expansion), qs.relevant)
    r10 = np.array([(r <= 10).mean() if len(r) else 0.0 for r in ranks])
    rr = np.array([1.0 / r[0] if len(r) else 0.0 for r in ranks])
    return np.where(qs.embeddable, r10, 0.0), np.where(qs.embeddable, rr, 0.0)


class HeldOut:
    """One source's gallery: its items, cached backbone outputs and query sets per text encoder."""

    def __init__(self, ws: Workspace, source: str, like: HeldOut | None = None) -> None:
        """`like`: the same source's gallery on another image side, whose items and queries are shared."""
        self.source = source
        self.items: list[Any]
        self.labels: list[frozenset[str]]
        self._keyword: list[Query]
        self._rare: list[Query]
        self._sets: dict[int, tuple[QuerySet, QuerySet]]
        if like is not None:
            self.items, self.labels = like.items, like.labels
            self._keyword, self._rare, self._sets = like._keyword, like._rare, like._sets
        else:
            self.items = ws.items([source], None)
            self.labels = gallery_labels(self.items)
            self._keyword = keyword_queries(self.labels, KEYWORD_MIN_IMAGES)
            self._rare = rare_queries(self.labels, RARE_MAX_IMAGES)
            self._sets = {}
        self.outputs = ws.outputs(self.items)

    def query_sets(self, text: TextEncoder) -> tuple[QuerySet, QuerySet]:
        if id(text) not in self._sets:
            self._sets[id(text)] = (
                QuerySet.build(text, self._keyword, self.labels),
                QuerySet.build(text, self._rare, self.labels),
            )
        return self._sets[id(text)]

    def score(self, vectors: np.ndarray, text: TextEncoder, expansion: Expansion | None = None) -> dict[str, Any]:
        """Every figure on this gallery; `expansion`: the queries expanded from the gallery first."""
        kw, rare = self.query_sets(text)
        p10 = keyword_p10(vectors, kw, expansion)
        r10, rr = rare_recall_rr(vectors, rare, expansion)
        return {
            "p10": float(p10.mean()) if p10.size else None,
            "r10": float(r10.mean()) if r10.size else None,
            "mrr": float(rr.mean()) if rr.size else None,
            "p10_per_query": p10.tolist(),
            "r10_per_query": r10.tolist(),
            "rr_per_query": rr.tolist(),
        }

    def describe(self) -> dict[str, Any]:
        return {"images": len(self.items), "keyword_queries": len(self._keyword), "rare_queries": len(self._rare)}


def source_mean(results: dict[str, dict[str, Any]], metric: str) -> float | None:
    """Mean over sources of a per-source figure, each source weighing the same (sources without it skipped)."""
    vals = [r[metric] for r in results.values() if r.get(metric) is not None]
    return float(np.mean(vals)) if vals else None


def fold_options(options: RunOptions, training_sources: Sequence[str]) -> RunOptions:
    """A candidate's options for one fold: every part of every other source, no validation sets."""
    return replace(options, train_sources=tuple(training_sources), val_sources=(), parts=ALL_PARTS)


def run_loso(
    ws: Workspace,
    candidates: Sequence[Candidate],
    holdout: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
    baselines: Sequence[ClassPrior] = (ClassPrior("prompt"), ClassPrior("wordnet")),
    progress: bool = True,
    bundles: Sequence[tuple[Any, Sequence[str] | None]] = (),
) -> dict[str, Any]:
    """Every candidate (and each zero-training baseline) on every held-out source; returns the report dict.

    `sources`: the sources taking part (default: every prepared one); `holdout`: the ones held out in
    turn (default: all of them). `bundles`: (finished bundle (`encoders.bundle.Bundle`), the sources it
    trained on or None if unknown), each scored as it is on every held-out gallery beside the candidates,
    e.g. the shipped one; a source a bundle trained on is not held out for it, and the report says so.

    A candidate with its own `backbone` or `tta` trains and is scored on that image side's features;
    the zero-training baselines are then measured on every image side taking part, each row named
    after it, beside those of the settings' backbone (the reference: `baseline` and the ratios)."""
    started = time.perf_counter()
    prepared = ws.prepared_sources()
    pool = list(sources) if sources else prepared
    missing = [s for s in [*pool, *(holdout or ())] if s not in prepared]
    if missing:
        raise ConfigurationError(f"source(s) {', '.join(missing)} not prepared; prepared: {', '.join(prepared)}")
    held = list(holdout) if holdout else pool
    if len(pool) < 2:
        raise ConfigurationError("leave-one-source-out needs at least two prepared sources")
    galleries = {s: HeldOut(ws, s) for s in held}
    spaces = {ws.label: ws}
    for cand in candidates:
        space = ws.with_backbone(cand.backbone, cand.tta)
        spaces.setdefault(space.label, space)
    by_space = {
        label: galleries if space is ws else {s: HeldOut(space, s, like=galleries[s]) for s in held}
        for label, space in spaces.items()
    }
    minilm, _ = ws.text("minilm")
    k = ws.settings.zeroshot_top_k
    rows: list[dict[str, Any]] = []
    for label, space_galleries in by_space.items():
        for prior in baselines:
            classes = ws.class_matrix(minilm, prior)
            results = {
                s: g.score(zeroshot_vectors(g.outputs.logits, classes, k), minilm) for s, g in space_galleries.items()
            }
            rows.append(
                {
                    "name": f"zero-training ({prior.label}{'' if label == ws.label else f', {label}'})",
                    "kind": "zeroshot",
                    "prior": prior.to_json(),
                    "backbone": label,
                    "results": results,
                }
            )
    for bundle, trained_on in bundles:
        image, text = bundle.image, bundle.text
        vectors = bundle_vectors(
            ws, image, {s: g.items for s, g in galleries.items()}, {s: g.outputs for s, g in galleries.items()}
        )
        results = {s: g.score(vectors[s], text) for s, g in galleries.items()}
        rows.append(
            {
                "name": f"bundle {bundle.name}",
                "kind": "bundle",
                "trained_on": None if trained_on is None else [s for s in trained_on if s in galleries],
                "results": results,
            }
        )
    folds = [(c, s) for c in candidates for s in held]
    per_candidate: dict[str, list[dict[str, Any]]] = {}
    # Per candidate and source: the head's and the zero-training vectors, so any row can be rebuilt
    # (for the cut-off analysis of the winner) without keeping one matrix per blend weight.
    kept: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray | None, TextEncoder]] = {}
    for cand, source in tqdm(folds, desc="leave-one-source-out", unit="fold", disable=not progress):
        others = [s for s in pool if s != source]
        fold_started = time.perf_counter()
        space = ws.with_backbone(cand.backbone, cand.tta)
        trained = train_one(space, fold_options(cand.options, others), progress=False)
        g = by_space[space.label][source]
        head = run_head(trained.result.head, g.outputs.features)
        zs = zeroshot_vectors(g.outputs.logits, trained.class_matrix, k)
        nw = cand.options.neighbour_weight
        nb = trained.neighbours.vectors(g.outputs.features) if trained.neighbours is not None and nw > 0 else None
        if cand.name not in per_candidate:
            per_candidate[cand.name] = [
                {
                    "name": f"{cand.name} (w={w:g})",
                    "kind": "candidate",
                    "candidate": cand.name,
                    "zeroshot_weight": w,
                    "config": {**describe_options(cand.options), "backbone": space.label},
                    "results": {},
                    "seconds": {},
                }
                for w in cand.weights
            ]
            rows.extend(per_candidate[cand.name])
        kept[(cand.name, source)] = (
            head.astype(np.float16),
            zs.astype(np.float16),
            None if nb is None else nb.astype(np.float16),
            trained.text,
        )
        for row, w in zip(per_candidate[cand.name], cand.weights, strict=True):
            row["results"][source] = g.score(blend(head, zs, w, nb, nw), trained.text)
            row["seconds"][source] = round(time.perf_counter() - fold_started, 1)
        log.info(
            "LOSO %s, held out %s: P@10 %s",
            cand.name,
            source,
            "  ".join(
                f"w={w:g}:{r['results'][source]['p10'] or 0:.3f}"
                for r, w in zip(per_candidate[cand.name], cand.weights, strict=True)
            ),
        )
    for row in rows:
        row["mean"] = {m: source_mean(row["results"], m) for m in ("p10", "r10", "mrr")}
    report = {
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seconds": round(time.perf_counter() - started, 1),
        "sources": {s: g.describe() for s, g in galleries.items()},
        "pool": pool,
        "max_per_source": ws.max_per_source,
        "train_max_per_source": ws.train_max_per_source,
        "baseline": rows[len(baselines) - 1]["name"] if baselines else None,
        "backbone": ws.label,
        "rows": rows,
    }
    compare_with_baselines(report)
    winner = next((r for r in rows if r["name"] == report["winner"]), None)
    if winner is not None:
        won = next(c for c in candidates if c.name == winner["candidate"])
        space_galleries = by_space[ws.with_backbone(won.backbone, won.tta).label]
        report["cutoff"] = cutoff_for(space_galleries, pool_labels(ws, pool), winner, kept)
    return report


def pool_labels(ws: Workspace, pool: Sequence[str]) -> dict[str, set[str]]:
    return {s: {w for lab in gallery_labels(ws.items([s], None)) for w in lab} for s in pool}


def cutoff_for(
    galleries: dict[str, HeldOut],
    labels: dict[str, set[str]],
    row: dict[str, Any],
    kept: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray | None, TextEncoder]],
) -> dict[str, Any]:
    """The score cut-off analysis (`evaluation.cutoff`) on the held-out galleries of one candidate row."""
    from jointspace.encoders.evaluation import cutoff

    out = []
    for source, g in galleries.items():
        head, prior, nb, text = kept[(row["candidate"], source)]
        vectors = blend(
            head.astype(np.float32),
            prior.astype(np.float32),
            row["zeroshot_weight"],
            None if nb is None else nb.astype(np.float32),
            row["config"].get("neighbour_weight", 0.0),
        )
        queries = [*keyword_queries(g.labels, KEYWORD_MIN_IMAGES), *rare_queries(g.labels, RARE_MAX_IMAGES)]
        absent = cutoff.absent_words(labels[source], [v for s, v in labels.items() if s != source])
        out.append(cutoff.build_gallery(source, vectors, g.labels, queries, absent, text))
    return {"row": row["name"], **cutoff.analyse(out)}


def describe_options(o: RunOptions) -> dict[str, Any]:
    return {
        "text": o.text,
        "targets": o.targets,
        "loss": o.train.loss,
        "epochs": o.train.epochs,
        "augment": list(o.augment),
        "prior": o.prior.to_json(),
        "prior_target_weight": o.prior_target_weight,
        "hidden": o.train.hidden,
        "dropout": o.train.dropout,
        "lr": o.train.lr,
        "seed": o.train.seed,
        **({"ridge_lambda": o.train.ridge_lambda} if o.train.loss == "ridge" else {}),
        **(
            {
                "neighbour_weight": o.neighbour_weight,
                "neighbour_k": o.neighbour_k,
                "neighbour_temperature": o.neighbour_temperature,
            }
            if o.neighbour_weight > 0
            else {}
        ),
    }


def compare_with_baselines(report: dict[str, Any]) -> None:
    """Add, to every candidate row, its per-source paired bootstrap of P@10 (and rare-word R@10) against
    each zero-training row, the mean's stratified interval, and the ratio of means; pick the winner."""
    rows = report["rows"]
    bases = [r for r in rows if r["kind"] == "zeroshot"]
    for row in rows:
        if row["kind"] not in ("candidate", "bundle"):
            continue
        row["against"] = {}
        for base in bases:
            entry: dict[str, Any] = {"per_source": {}}
            for metric, per_query in (("p10", "p10_per_query"), ("r10", "r10_per_query")):
                groups = []
                for s, res in row["results"].items():
                    a, b = res[per_query], base["results"][s][per_query]
                    if a:
                        mean, low, high = paired_bootstrap(a, b)
                        entry["per_source"].setdefault(s, {})[metric] = {
                            "diff": mean,
                            "low": low,
                            "high": high,
                            "n": len(a),
                        }
                        groups.append((a, b))
                mean, low, high = stratified_bootstrap(groups) if groups else (0.0, 0.0, 0.0)
                entry[metric] = {"diff": mean, "low": low, "high": high}
                bm, rm = base["mean"][metric], row["mean"][metric]
                entry[metric]["ratio"] = rm / bm if bm and rm is not None else None
            scored = [v["p10"] for v in entry["per_source"].values() if "p10" in v]
            entry["sources_above_zero"] = sum(v["low"] > 0 for v in scored)
            entry["sources_scored"] = len(scored)
            row["against"][base["name"]] = entry
    cands = [r for r in rows if r["kind"] == "candidate" and r["mean"]["p10"] is not None]
    report["winner"] = max(cands, key=lambda r: r["mean"]["p10"])["name"] if cands else None


def _candidate(
    name: str,
    weights: tuple[float, ...] = (0.0, 0.2, 0.3, 0.5),
    epochs: int = 30,
    loss: str = "soft-contrastive",
    ridge_lambda: float | None = None,
    **options: Any,
) -> Candidate:
    from jointspace.encoders.training import TrainConfig

    train = TrainConfig(loss=loss, epochs=epochs)  # type: ignore[arg-type]  # a str here, one of the losses
    if ridge_lambda is not None:
        train = replace(train, ridge_lambda=ridge_lambda)
    return Candidate(name, RunOptions(train=train, **options), weights)


WORDNET = ClassPrior("wordnet")
# The configuration shipped before leave-one-source-out (issue 13): prompt prior, blend 0.2, and the
# 12 epochs its early stopping kept (here a 12-epoch schedule: folds have no validation split).
SHIPPED_BEFORE = _candidate("shipped before", weights=(0.2,), epochs=12)
# The configuration shipped after the first leave-one-source-out selection (on five sources).
SOFT_CONTRASTIVE_30 = _candidate("soft-contrastive 30ep wordnet", epochs=30, prior=WORDNET)
RIDGE_WEIGHTS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7)
# What `jointspace eval --loso --loso-grid` compares; the default is the grid's LOSO winner. On all
# fourteen sources a gradient-trained MLP fold costs far more than two shared cores allow (about
# 100 s an epoch over 4,600 pictures at a load of 18), so the grid holds the closed-form ridge heads;
# the MLP candidates above are measured with a grid of your own (or a GPU).
GRID: tuple[Candidate, ...] = (
    _candidate("ridge λ300 wordnet", RIDGE_WEIGHTS, loss="ridge", ridge_lambda=300.0, prior=WORDNET),
    # The default since issue 13's second round: the 10 nearest training pictures' targets at 0.35
    # (bench/loso_experiments.py compared k, temperature and weights; λ1000 lost there, as before).
    _candidate(
        "ridge λ300 wordnet + 10 neighbours 0.35",
        (0.4, 0.5, 0.6),
        loss="ridge",
        ridge_lambda=300.0,
        prior=WORDNET,
        neighbour_weight=0.35,
        neighbour_k=10,
        neighbour_temperature=0.1,
    ),
)
# Measured less often (each costs a full set of folds; run them with a grid of your own): the prompt
# prior at 30 epochs, prior targets (`prior_target_weight`), the regression loss, 15 and 60 epochs.
# `jointspace eval --loso`: the configuration `jointspace train` uses by default, with its blend weight.
DEFAULT_CANDIDATE = Candidate("default", DEFAULT_RUN, (DEFAULT_RUN.zeroshot_weight,))
