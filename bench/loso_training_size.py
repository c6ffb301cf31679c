"""How much the default gains from a larger training side, judged by leave-one-source-out (issue 13).

    JOINTSPACE_HOME=... nice -n 10 python bench/loso_training_size.py --max-per-source 500 \\
        --train-caps 500 2000 0 --out report.json

Every run holds out the same galleries (at most `--max-per-source` pictures of each source, the
spread `jointspace eval --loso --max-per-source` uses) and trains the default configuration
(`DEFAULT_RUN`: ridge head, WordNet zero-training vector, the nearest training pictures' targets) on
at most N pictures of each other source for every N in `--train-caps` (0: every prepared picture;
the first N of the same spread, so the galleries' pictures are among them), beside the zero-training
baseline measured on the same galleries. The summary gives each cap's LOSO mean single-keyword P@10
(sources weighted equally), its ratio to zero-training, the sources whose paired interval against
zero-training lies above 0, rare-word R@10, and the paired (per query) difference against the first
cap's row, per source and as the stratified mean. It is the same as running `jointspace eval --loso
--max-per-source 500 --train-max-per-source N` once per N, in one process.

`--compressed D ...` also scores, for the last cap, the neighbour bank stored the way the shipped
bundle stores it (`NeighbourBank.compressed(D)`, int8 rows; D 0: int8 rows without a projection),
so what compression changes is measured on unseen sources too (the folds are trained again for it).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from jointspace.encoders.evaluation.core import paired_by_source
from jointspace.encoders.evaluation.loso import DEFAULT_CANDIDATE, HeldOut, fold_options, run_loso, source_mean
from jointspace.encoders.image_encoders import run_head, zeroshot_vectors
from jointspace.encoders.knn import NeighbourBank, blend
from jointspace.encoders.training_runs import DEFAULT_RUN, Workspace, train_one

from jointspace.settings import get_settings

BASELINE = "zero-training (wordnet-6x0.5)"


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def compressed_rows(ws: Workspace, cap: int, dims: list[int], sources: list[str]) -> list[dict[str, Any]]:
    """The default trained in every fold, its bank stored compressed as the shipped bundle stores it
    (`NeighbourBank.compressed(d)` then int8 rows, through the file) for every d in `dims` (0: int8
    rows of the full keys, no projection); one row each, the folds trained once."""
    opts = DEFAULT_RUN
    results: dict[int, dict[str, Any]] = {d: {} for d in (-2, -1, *dims)}  # -2 zero-training, -1 float32
    for s in sources:
        trained = train_one(ws, fold_options(opts, [o for o in sources if o != s]), progress=False)
        g = HeldOut(ws, s)
        assert trained.neighbours is not None
        head = run_head(trained.result.head, g.outputs.features)
        zs = zeroshot_vectors(g.outputs.logits, trained.class_matrix, ws.settings.zeroshot_top_k)
        nw, zw = opts.neighbour_weight, opts.zeroshot_weight
        full = blend(head, zs, zw, trained.neighbours.vectors(g.outputs.features), nw)
        results[-2][s], results[-1][s] = g.score(zs, trained.text), g.score(full, trained.text)
        for d in dims:
            with tempfile.TemporaryDirectory() as tmp:  # through the file, as the bundle loads it
                (trained.neighbours.compressed(d) if d else trained.neighbours).save(Path(tmp) / "n.npz", np.int8)
                bank = NeighbourBank.load(Path(tmp) / "n.npz")
            small = blend(head, zs, zw, bank.vectors(g.outputs.features), nw)
            res = results[d][s] = g.score(small, trained.text)
            res["min_cosine"] = float((full * small).sum(1).min())
            log(f"  int8 bank, {d or 'all'} dims, {s}: P@10 {res['p10'] or 0:.3f} (min cosine {res['min_cosine']:.5f})")
    rows = []
    for d in (-2, -1, *dims):
        name = {-2: BASELINE + " (in the folds)", -1: f"default, training ≤ {cap or 'all'}, float32 bank"}.get(
            d, f"default, training ≤ {cap or 'all'}, int8 bank on {d or 'all'} dims"
        )
        row = {
            "name": name,
            "kind": "zeroshot" if d == -2 else "candidate",
            "train_cap": cap,
            "bank_dims": d,
            "results": results[d],
        }
        row["mean"] = {m: source_mean(results[d], m) for m in ("p10", "r10", "mrr")}
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-per-source", type=int, default=500, help="the held-out galleries' cap (0: all)")
    ap.add_argument("--train-caps", type=int, nargs="+", default=[500, 2000, 0], help="training caps (0: all)")
    ap.add_argument(
        "--compressed",
        type=int,
        nargs="*",
        default=None,
        help="also the last cap's bank stored as int8 rows on these many principal directions (0: all)",
    )
    ap.add_argument(
        "--compressed-only",
        action="store_true",
        help="only the compressed banks of the first cap, beside zero-training and the float32 bank in the same folds",
    )
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    settings = get_settings()
    gallery_cap = args.max_per_source or None
    rows: list[dict[str, Any]] = []
    base: dict[str, Any] | None = None
    reports = {}
    for cap in args.train_caps:
        ws = Workspace(settings, max_per_source=gallery_cap, train_max_per_source=cap)
        if args.compressed_only:  # the folds once: zero-training, the float32 bank and each compression
            rows = compressed_rows(ws, cap, args.compressed or [256], ws.prepared_sources())
            base = rows[0]
            break
        started = time.perf_counter()
        report = run_loso(ws, [replace(DEFAULT_CANDIDATE, name=f"default, training ≤ {cap or 'all'}")], progress=False)
        log(f"training cap {cap or 'all'}: {report['seconds']:.0f} s")
        if base is None:
            base = next(r for r in report["rows"] if r["name"] == BASELINE)
            rows.append(base)
        row = next(r for r in report["rows"] if r["kind"] == "candidate")
        row["train_cap"] = cap
        row["seconds_total"] = round(time.perf_counter() - started, 1)
        rows.append(row)
        reports[cap] = {k: report.get(k) for k in ("sources", "pool", "max_per_source", "train_max_per_source")}
        if args.compressed and cap == args.train_caps[-1]:
            rows.extend(compressed_rows(ws, cap, args.compressed, report["pool"])[2:])  # the run has both
    assert base is not None
    first = rows[1]
    for row in rows[1:]:
        row["vs_zero"] = {
            "p10": paired_by_source(row["results"], base["results"], "p10"),
            "r10": paired_by_source(row["results"], base["results"], "r10"),
        }
        row["vs_first"] = {
            "p10": paired_by_source(row["results"], first["results"], "p10"),
            "r10": paired_by_source(row["results"], first["results"], "r10"),
        }
    sources = list(base["results"])
    print()
    print("| row | " + " | ".join(sources) + " | mean | × zero-training | sources > 0 | R@10 |")
    print("| --- |" + " ---: |" * (len(sources) + 4))
    for row in rows:
        cells = [f"{row['results'][s]['p10']:.3f}" for s in sources]
        above = row.get("vs_zero", {}).get("p10", {}).get("above", "")
        ratio = row["mean"]["p10"] / base["mean"]["p10"]
        print(
            f"| {row['name']} | " + " | ".join(cells) + f" | {row['mean']['p10']:.3f} | {ratio:.2f} | {above} |"
            f" {row['mean']['r10']:.3f} |"
        )
    print()
    for row in rows[1:]:
        for ref in ("vs_zero", "vs_first"):
            for metric in ("p10", "r10"):
                e = row[ref][metric]
                print(
                    f"{row['name']} {ref} {metric}: {e['diff']:+.3f} [{e['low']:+.3f}, {e['high']:+.3f}], "
                    f"{e['above']} sources above 0, {e['below']} below"
                )
    if args.out:
        for row in rows:
            for res in row["results"].values():
                for k in ("p10_per_query", "r10_per_query", "rr_per_query"):
                    res[k] = np.round(res[k], 4).tolist()
        args.out.write_text(json.dumps({"runs": reports, "rows": rows}, indent=1), encoding="utf-8")
        log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
