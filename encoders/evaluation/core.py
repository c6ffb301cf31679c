"""Scoring image vectors against a gallery's queries: vectorised so a validation pass takes milliseconds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from jointspace.encoders.evaluation.metrics import category_base_rate, image_to_image_p10
from jointspace.encoders.evaluation.queries import (
    Query,
    compound_queries,
    gallery_labels,
    keyword_queries,
    relevant_mask,
    seed_queries,
)
from jointspace.encoders.targets import Labelled
from jointspace.encoders.vectors import unit_rows

from jointspace.protocols import TextEncoder

if TYPE_CHECKING:  # training_runs imports this module's scorers
    from jointspace.encoders.training_runs import Workspace

KINDS = ("keyword", "compound", "seed")


@dataclass
class Gallery:
    """The images one evaluation ranks (one source's test split, say), with their labels."""

    name: str
    items: Sequence[Labelled]
    labels: list[frozenset[str]] = field(init=False)
    queries: list[Query] = field(init=False)

    def __post_init__(self) -> None:
        self.labels = gallery_labels(self.items)
        self.queries = []

    def with_queries(self, min_images: int = 5, compounds: bool = True, seeds: bool = True) -> Gallery:
        self.queries = keyword_queries(self.labels, min_images)
        if compounds:
            self.queries += compound_queries(self.labels, min_images)
        if seeds:
            self.queries += seed_queries(self.labels)
        return self

    @property
    def categories(self) -> list[str]:
        return [it.category or "?" for it in self.items]

    def relevance(self) -> np.ndarray:
        """(queries, gallery) boolean matrix."""
        return np.array([relevant_mask(q, self.labels) for q in self.queries], dtype=bool).reshape(
            len(self.queries), len(self.items)
        )


def term_vector(text: TextEncoder, words: tuple[str, ...]) -> np.ndarray | None:
    """One query term's vector; None when the encoder cannot embed it (a user would get an error)."""
    try:
        if len(words) > 1 and callable(getattr(text, "encode", None)):
            return text.embed_words([" ".join(words)])[0]  # a sentence model reads "ice cream" as a phrase
        return unit_rows(text.embed_words(list(words)).mean(axis=0))
    except KeyError:
        return None


def query_matrix(text: TextEncoder, queries: Sequence[Query]) -> tuple[np.ndarray, np.ndarray]:
    """(queries, dim) unit query vectors (the sum of term vectors, normalised) and a mask of embeddable ones."""
    out = np.zeros((len(queries), text.dim), np.float32)
    ok = np.zeros(len(queries), bool)
    for i, q in enumerate(queries):
        vectors = [v for v in (term_vector(text, t) for t in q.terms) if v is not None]
        if len(vectors) == len(q.terms):
            out[i], ok[i] = unit_rows(np.sum(vectors, axis=0)), True
    return out, ok


def rank_metrics(vectors: np.ndarray, qvecs: np.ndarray, relevant: np.ndarray) -> dict[str, np.ndarray]:
    """Per-query P@5, P@10 and average precision (arrays of length = queries)."""
    if len(qvecs) == 0:
        empty = np.zeros(0, np.float32)
        return {"p5": empty, "p10": empty, "ap": empty}
    scores = qvecs @ vectors.T
    order = np.argsort(-scores, axis=1, kind="stable")
    hits = np.take_along_axis(relevant, order, axis=1)
    cum = np.cumsum(hits, axis=1)
    ranks = np.arange(1, hits.shape[1] + 1)
    n_rel = np.maximum(relevant.sum(axis=1), 1)
    ap = (cum / ranks * hits).sum(axis=1) / n_rel
    return {"p5": hits[:, :5].mean(axis=1), "p10": hits[:, :10].mean(axis=1), "ap": ap}


class GalleryScorer:
    """Precomputes one gallery's query vectors and relevance for a text encoder, then scores image vectors."""

    def __init__(self, gallery: Gallery, text: TextEncoder) -> None:
        self.gallery = gallery
        self.kinds = np.array([q.kind for q in gallery.queries])
        self.qvecs, self.embeddable = query_matrix(text, gallery.queries)
        self.relevant = gallery.relevance()

    def keyword_p10(self, vectors: np.ndarray) -> float:
        """Mean P@10 over single-keyword queries (0 for those the encoder cannot embed): the selection score."""
        sel = self.kinds == "keyword"
        m = rank_metrics(vectors, self.qvecs[sel], self.relevant[sel])
        return float(np.where(self.embeddable[sel], m["p10"], 0.0).mean()) if sel.any() else 0.0

    def score(self, vectors: np.ndarray) -> dict[str, dict[str, Any]]:
        m = rank_metrics(vectors, self.qvecs, self.relevant)
        out: dict[str, dict[str, Any]] = {}
        for kind in KINDS:
            sel = self.kinds == kind
            if not sel.any():
                continue
            ok = self.embeddable[sel]
            out[kind] = {
                "n": int(sel.sum()),
                "coverage": float(ok.mean()),
                **{k: float(np.where(ok, v[sel], 0.0).mean()) for k, v in m.items()},
            }
        if "keyword" in out:  # kept per query so that two configurations can be compared query by query
            sel = self.kinds == "keyword"
            out["keyword"]["p10_per_query"] = [float(x) for x in np.where(self.embeddable[sel], m["p10"][sel], 0.0)]
        p10, _, n = image_to_image_p10(vectors, self.gallery.categories)
        out["image"] = {"n": n, "p10": p10}
        return out

    def random(self) -> dict[str, dict[str, float]]:
        rate = self.relevant.mean(axis=1) if self.relevant.size else np.zeros(len(self.kinds))
        out: dict[str, dict[str, float]] = {}
        for kind in KINDS:
            sel = self.kinds == kind
            if sel.any():
                r = float(rate[sel].mean())
                out[kind] = {"n": int(sel.sum()), "coverage": 1.0, "p5": r, "p10": r, "ap": r}
        base, n = category_base_rate(self.gallery.categories)
        out["image"] = {"n": n, "p10": base}
        return out


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], resamples: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of `a - b` over the same queries and its 95 % bootstrap interval (queries resampled with
    replacement): how far two configurations differ beyond the luck of which queries a gallery has."""
    return stratified_bootstrap([(a, b)], resamples, seed)


def stratified_bootstrap(
    groups: Sequence[tuple[Sequence[float], Sequence[float]]], resamples: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """As `paired_bootstrap` for the *mean of per-gallery means* (each gallery weighs the same, as in the
    report's mean column): queries are resampled within each gallery."""
    diffs = [np.asarray(a, np.float64) - np.asarray(b, np.float64) for a, b in groups]
    diffs = [d for d in diffs if d.size]
    if not diffs:
        return 0.0, 0.0, 0.0
    rng = np.random.default_rng(seed)
    means = np.mean([d[rng.integers(0, d.size, (resamples, d.size))].mean(axis=1) for d in diffs], axis=0)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(np.mean([d.mean() for d in diffs])), float(low), float(high)


def paired_by_source(
    results: Mapping[str, Mapping[str, Any]], reference: Mapping[str, Mapping[str, Any]], metric: str
) -> dict[str, Any]:
    """`results` − `reference` per held-out source, paired by query (`{metric}_per_query` of each),
    and their stratified mean: intervals, and how many sources lie wholly above or below 0."""
    key = f"{metric}_per_query"
    per_source: dict[str, dict[str, float]] = {}
    groups = []
    for source, result in results.items():
        a, b = result[key], reference[source][key]
        if len(a):
            mean, low, high = paired_bootstrap(a, b)
            per_source[source] = {"diff": mean, "low": low, "high": high, "n": len(a)}
            groups.append((a, b))
    mean, low, high = stratified_bootstrap(groups)
    return {
        "per_source": per_source,
        "diff": mean,
        "low": low,
        "high": high,
        "above": sum(v["low"] > 0 for v in per_source.values()),
        "below": sum(v["high"] < 0 for v in per_source.values()),
    }


def own_backbone_spec(image: Any) -> Any:
    """The backbone spec an image encoder embeds features of (`embed_features`), or None when it has
    no separate backbone: its vectors then come from decoding the pictures (`embed_pictures`)."""
    spec = getattr(getattr(image, "backbone", None), "spec", None)
    return spec if spec is not None and hasattr(image, "embed_features") else None


def bundle_vectors(
    ws: Workspace, image: Any, items: Mapping[str, Sequence[Any]], outputs: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """A finished bundle's vectors of each gallery's pictures (`items`, with `ws`'s cached `outputs`),
    from its own backbone's outputs: a bundle trained on average-pooled features must not be fed GeM
    ones, nor the reverse. Another spec's outputs come from that spec's feature cache."""
    spec = own_backbone_spec(image)
    if spec is None:
        return {name: embed_pictures(image, its) for name, its in items.items()}
    own = ws.with_spec(spec)
    vectors = {}
    for name, its in items.items():
        o = outputs[name] if own is ws else own.outputs(its)
        vectors[name] = image.embed_features(o.features, o.logits)
    return vectors


def embed_pictures(image: Any, items: Sequence[Any]) -> np.ndarray:
    """An image encoder's vectors of items' pictures, decoded one by one: for a bundle whose backbone
    outputs the evaluation has not cached (one without a separate backbone, or another one)."""
    from PIL import Image

    return np.concatenate([image.embed_images([Image.open(it.post.image).convert("RGB")]) for it in items])
