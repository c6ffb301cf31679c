"""Query expansion (pseudo-relevance feedback) judged by leave-one-source-out (issue 13).

    JOINTSPACE_HOME=... nice -n 19 python bench/loso_query_expansion.py --max-per-source 500 \\
        --train-max-per-source 0 --out report.json

Every fold trains the default configuration (`DEFAULT_RUN`) on the other thirteen sources (at most
`--train-max-per-source` pictures of each, 0 every picture, as the shipped bundle) and scores the
held-out gallery (at most `--max-per-source` pictures, the spread `jointspace eval --loso` uses)
with three sets of picture vectors: the zero-training baseline (WordNet prior, as in the folds), the
default with its float32 neighbour bank (what `jointspace eval --loso` scores) and the default with
the bank stored as the shipped bundle stores it (`NeighbourBank.compressed(256)`, int8 rows). Each is
scored plain and with every query expansion of the grid (`query.expansion`: the top m hits of the
held-out gallery fed back at weight β, weights sᵢ^α; m × β × α), so the gain from expansion is seen
apart from the gain from training. Reported per row: the LOSO mean single-keyword P@10 (sources
weighted equally), its ratio to plain zero-training, the sources whose paired interval against plain
zero-training lies above 0, rare-word R@10, and the paired difference against the same vectors
without expansion. The setting is chosen on the LOSO mean; a nested choice (for each held-out
source, the setting with the best mean over the other thirteen sources' galleries, then scored on
the held-out one) says how much of the chosen row's gain is the choice itself.

Expansion reads only the held-out gallery's picture vectors (never labels).

`--relatives` also measures two relatives on the same folds (rows only, no nested choice): the
feedback's picture-to-picture similarity read on the backbone's standardised features (the fold's
neighbour-bank standardisation) instead of the joint space, "feature PRF m β"; and database-side
augmentation, each gallery vector moved towards the mean of its k nearest gallery pictures by those
features at weight γ, then scored plain, "DBA k γ".
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from jointspace.encoders.evaluation.core import paired_by_source
from jointspace.encoders.evaluation.expansion import Expansion, augment_gallery, feedback_scores
from jointspace.encoders.evaluation.loso import HeldOut, fold_options, ranks_of_relevant, source_mean
from jointspace.encoders.image_encoders import run_head, zeroshot_vectors
from jointspace.encoders.knn import NeighbourBank, blend
from jointspace.encoders.training_runs import DEFAULT_RUN, Workspace, train_one
from jointspace.encoders.vectors import unit_rows

from jointspace.settings import get_settings

FAMILIES = ("zero-training", "default float32 bank", "default int8 bank 256")


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def score_with(g: HeldOut, text: Any, scores_of: Any) -> dict[str, Any]:
    """As `HeldOut.score`, the (Q, N) scores made by `scores_of(query vectors)`."""
    out: dict[str, Any] = {}
    kw, rare = g.query_sets(text)
    if kw.queries:
        ranks = ranks_of_relevant(scores_of(kw.vectors), kw.relevant)
        p10 = np.where(kw.embeddable, [(r <= 10).sum() / 10 for r in ranks], 0.0)
    else:
        p10 = np.zeros(0)
    if rare.queries:
        ranks = ranks_of_relevant(scores_of(rare.vectors), rare.relevant)
        r10 = np.where(rare.embeddable, [(r <= 10).mean() if len(r) else 0.0 for r in ranks], 0.0)
        rr = np.where(rare.embeddable, [1.0 / r[0] if len(r) else 0.0 for r in ranks], 0.0)
    else:
        r10 = rr = np.zeros(0)
    out["p10"] = float(p10.mean()) if p10.size else None
    out["r10"] = float(r10.mean()) if r10.size else None
    out["mrr"] = float(rr.mean()) if rr.size else None
    out["p10_per_query"], out["r10_per_query"], out["rr_per_query"] = p10.tolist(), r10.tolist(), rr.tolist()
    return out


def plain_scores(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    return np.asarray(queries, np.float32) @ gallery.T


def relatives(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """(label, settings) of the relatives measured with --relatives."""
    if not args.relatives:
        return []
    prf = [(f"feature PRF m={m} β={b:g}", ("prf", Expansion(m, b))) for m in (5, 10, 20) for b in (0.25, 0.5, 1.0)]
    dba = [(f"DBA k={k} γ={w:g}", ("dba", k, w)) for k in (3, 5, 10) for w in (0.5, 1.0)]
    return prf + dba


def grid(tops: list[int], weights: list[float], alphas: list[float]) -> list[Expansion]:
    return [Expansion()] + [Expansion(m, b, a) for a, m, b in itertools.product(alphas, tops, weights)]


def nested(results: dict[Expansion, dict[str, Any]], sources: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """For each source, the expansion with the best P@10 mean over the other sources, scored on it."""
    out, chosen = {}, {}
    for s in sources:
        others = [o for o in sources if o != s]
        best = max(results, key=lambda e: np.mean([results[e][o]["p10"] for o in others]))
        out[s], chosen[s] = results[best][s], best.label()
    return out, chosen


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-per-source", type=int, default=500, help="the held-out galleries' cap (0: all)")
    ap.add_argument("--train-max-per-source", type=int, default=0, help="what training takes of each source (0: all)")
    ap.add_argument("--bank-dims", type=int, default=256, help="the compressed bank's dimensions, as shipped")
    ap.add_argument("--tops", type=int, nargs="+", default=[3, 5, 10, 20])
    ap.add_argument("--weights", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.0, 3.0])
    ap.add_argument("--relatives", action="store_true", help="also feature-space feedback and gallery augmentation")
    ap.add_argument("--sources", nargs="*", default=None, help="a subset of the prepared sources (a quick check)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    settings = get_settings()
    ws = Workspace(settings, max_per_source=args.max_per_source or None, train_max_per_source=args.train_max_per_source)
    sources = args.sources or ws.prepared_sources()
    expansions = grid(args.tops, args.weights, args.alphas)
    opts = DEFAULT_RUN
    # results[family][expansion][source] = HeldOut.score(...)
    results: dict[str, dict[Expansion, dict[str, Any]]] = {f: {e: {} for e in expansions} for f in FAMILIES}
    extra = relatives(args)
    extra_results: dict[str, dict[str, dict[str, Any]]] = {f: {label: {} for label, _ in extra} for f in FAMILIES}
    described = {}
    started = time.perf_counter()
    for s in sources:
        t0 = time.perf_counter()
        trained = train_one(ws, fold_options(opts, [o for o in sources if o != s]), progress=False)
        assert trained.neighbours is not None
        g = HeldOut(ws, s)
        described[s] = g.describe()
        head = run_head(trained.result.head, g.outputs.features)
        zs = zeroshot_vectors(g.outputs.logits, trained.class_matrix, ws.settings.zeroshot_top_k)
        nw, zw = opts.neighbour_weight, opts.zeroshot_weight
        full = blend(head, zs, zw, trained.neighbours.vectors(g.outputs.features), nw)
        with tempfile.TemporaryDirectory() as tmp:  # through the file, as the bundle loads it
            trained.neighbours.compressed(args.bank_dims).save(Path(tmp) / "n.npz", np.int8)
            bank = NeighbourBank.load(Path(tmp) / "n.npz")
        small = blend(head, zs, zw, bank.vectors(g.outputs.features), nw)
        t1 = time.perf_counter()
        for family, vectors in zip(FAMILIES, (zs, full, small), strict=True):
            for e in expansions:
                results[family][e][s] = g.score(vectors, trained.text, e)
        if extra:
            bank0 = trained.neighbours
            feats = unit_rows(
                ((np.asarray(g.outputs.features, np.float32) - bank0.mean) / bank0.scale).astype(np.float32)
            )
            for family, vectors in zip(FAMILIES, (zs, full, small), strict=True):
                for label, spec in extra:
                    scores_of: Callable[[np.ndarray], np.ndarray]
                    if spec[0] == "prf":
                        scores_of = partial(feedback_scores, gallery=vectors, expansion=spec[1], among=feats)
                    else:
                        scores_of = partial(plain_scores, gallery=augment_gallery(vectors, feats, spec[1], spec[2]))
                    extra_results[family][label][s] = score_with(g, trained.text, scores_of)
        plain_p10 = [results[f][Expansion()][s]["p10"] or 0 for f in FAMILIES]
        best_p10 = [max((results[f][e][s]["p10"] or 0) for e in expansions) for f in FAMILIES]
        log(
            f"{s}: {described[s]}, train {t1 - t0:.0f} s, score {time.perf_counter() - t1:.0f} s; P@10 plain "
            + " / ".join(f"{p:.3f}" for p in plain_p10)
            + ", best QE "
            + " / ".join(f"{p:.3f}" for p in best_p10)
        )
    log(f"folds done in {time.perf_counter() - started:.0f} s")
    scored = [s for s in sources if results[FAMILIES[0]][Expansion()][s]["p10"] is not None]
    base = results["zero-training"][Expansion()]
    rows: list[dict[str, Any]] = []
    for family in FAMILIES:
        plain = results[family][Expansion()]
        for e in expansions:
            res = results[family][e]
            rows.append(
                {
                    "name": f"{family}, {e.label()}",
                    "family": family,
                    "expansion": {"top": e.top, "weight": e.weight, "alpha": e.alpha},
                    "results": res,
                }
            )
        for label, _ in extra:
            rows.append(
                {
                    "name": f"{family}, {label}",
                    "family": family,
                    "expansion": label,
                    "results": extra_results[family][label],
                }
            )
        nres, chosen = nested(results[family], scored)
        rows.append(
            {
                "name": f"{family}, QE chosen nested (on the other sources)",
                "family": family,
                "expansion": "nested",
                "chosen": chosen,
                "results": {s: nres.get(s, plain[s]) for s in sources},
            }
        )
    for row in rows:
        res = row["results"]
        row["mean"] = {m: source_mean(res, m) for m in ("p10", "r10", "mrr")}
        row["vs_zero"] = {m: paired_by_source(res, base, m) for m in ("p10", "r10")}
        if row["expansion"] != {"top": 0, "weight": 1.0, "alpha": 0.0}:
            row["vs_plain"] = {m: paired_by_source(res, results[row["family"]][Expansion()], m) for m in ("p10", "r10")}
    base_mean = source_mean(base, "p10") or 1.0
    print()
    print("| row | " + " | ".join(sources) + " | mean | × zero-training | sources > 0 | R@10 | vs no QE (P@10) |")
    print("| --- |" + " ---: |" * (len(sources) + 5))
    for row in rows:
        cells = [f"{row['results'][s]['p10'] or 0:.3f}" for s in sources]
        vz, vp = row["vs_zero"]["p10"], row.get("vs_plain", {}).get("p10")
        gain = (
            f"{vp['diff']:+.3f} [{vp['low']:+.3f}, {vp['high']:+.3f}] ({vp['above']} up, {vp['below']} down)"
            if vp
            else ""
        )
        print(
            f"| {row['name']} | " + " | ".join(cells) + f" | {row['mean']['p10']:.3f} | "
            f"{row['mean']['p10'] / base_mean:.2f} | {vz['above']} | {row['mean']['r10']:.3f} | {gain} |"
        )
    print()
    for family in FAMILIES:
        fam = [r for r in rows if r["family"] == family and isinstance(r["expansion"], dict)]
        top = max(fam, key=lambda r: r["mean"]["p10"])
        print(f"{family}: best by the LOSO mean: {top['name']} ({top['mean']['p10']:.3f})")
        for key in ("vs_zero", "vs_plain"):
            for metric in ("p10", "r10"):
                if key in top:
                    ci = top[key][metric]
                    print(
                        f"  {key} {metric}: {ci['diff']:+.3f} [{ci['low']:+.3f}, {ci['high']:+.3f}], "
                        f"{ci['above']} above 0, {ci['below']} below; per source "
                        + ", ".join(
                            f"{s} {v['diff']:+.3f} [{v['low']:+.3f}, {v['high']:+.3f}]"
                            for s, v in ci["per_source"].items()
                        )
                    )
        rel = [
            r
            for r in rows
            if r["family"] == family and r["expansion"] not in ("nested",) and isinstance(r["expansion"], str)
        ]
        if rel:
            top_rel = max(rel, key=lambda r: r["mean"]["p10"])
            for metric in ("p10", "r10"):
                ci = top_rel["vs_plain"][metric]
                print(
                    f"  best relative {top_rel['name']}: {top_rel['mean']['p10']:.3f}; vs no QE {metric}: "
                    f"{ci['diff']:+.3f} [{ci['low']:+.3f}, {ci['high']:+.3f}], {ci['above']} up, {ci['below']} down"
                )
        nest = next(r for r in rows if r["family"] == family and r["expansion"] == "nested")
        print(f"  nested: {nest['mean']['p10']:.3f} (chosen {nest['chosen']})")
        for metric in ("p10", "r10"):
            ci = nest["vs_plain"][metric]
            print(
                f"  nested vs no QE {metric}: {ci['diff']:+.3f} [{ci['low']:+.3f}, {ci['high']:+.3f}], "
                f"{ci['above']} up, {ci['below']} down"
            )
            ci = nest["vs_zero"][metric]
            print(
                f"  nested vs zero-training {metric}: {ci['diff']:+.3f} [{ci['low']:+.3f}, {ci['high']:+.3f}], "
                f"{ci['above']} above"
            )
    if args.out:
        for row in rows:
            for res in row["results"].values():
                for k in ("p10_per_query", "r10_per_query", "rr_per_query"):
                    res[k] = np.round(res[k], 4).tolist()
        payload = {
            "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            "max_per_source": args.max_per_source,
            "train_max_per_source": args.train_max_per_source,
            "bank_dims": args.bank_dims,
            "sources": described,
            "rows": rows,
        }
        args.out.write_text(json.dumps(payload, indent=1), encoding="utf-8")
        log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
