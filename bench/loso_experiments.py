"""Cheap variations of the ridge default, judged by leave-one-source-out only (issue 13).

    JOINTSPACE_HOME=... nice -n 10 python bench/loso_experiments.py --max-per-source 500 [--only NAME ...]

Features come from the workspace's feature cache (as `jointspace eval --loso`); every fold's ridge
head is solved from per-source sufficient statistics (Σx, Σxxᵀ, Σxyᵀ), which gives the same solution
as `encoders.ridge.fit_ridge` (checked on one fold at start) for many target variants and λs at the
cost of one solve each. Every row is scored on the same held-out galleries and queries as the
zero-training baseline and the shipped default (ridge λ300, word targets, WordNet prior, blend 0.5),
measured in the same run; the summary gives each row's LOSO mean P@10 (sources weighted equally), its
ratio to zero-training, the stratified paired interval of the difference against the default and
against zero-training, and the number of sources whose paired interval against zero-training lies
above 0.

Rows whose settings are chosen by nested LOSO (`nested ...`) pick their parameters, for each held-out
source S, by the mean P@10 of an inner leave-one-source-out over the other sources only: nothing of S
is used to choose them.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from jointspace.encoders.evaluation.core import stratified_bootstrap
from jointspace.encoders.evaluation.loso import HeldOut, keyword_p10, rare_recall_rr
from jointspace.encoders.image_encoders import ensemble, zeroshot_vectors
from jointspace.encoders.imagenet import ClassPrior
from jointspace.encoders.ridge import fit_ridge
from jointspace.encoders.targets import label_words
from jointspace.encoders.training_runs import Workspace
from jointspace.encoders.vectors import unit_rows
from jointspace.encoders.words import STOP_WORDS

from jointspace.settings import get_settings

WORDNET_DIR = Path("/usr/share/wordnet")


KNN_BLENDS = (
    (0.3, 0.2, 0.5),
    (0.15, 0.35, 0.5),
    (0.0, 0.5, 0.5),
    (0.2, 0.4, 0.4),
    (0.1, 0.3, 0.6),
    (0.2, 0.2, 0.6),
    (0.0, 0.6, 0.4),
)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- WordNet hypernyms of label words
class WordNet:
    """First-sense noun hypernym chains of single words, from Debian's wordnet-base files."""

    def __init__(self, root: Path = WORDNET_DIR) -> None:
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
        from imagenet_wordnet import TOP, read_data_noun  # type: ignore[import-not-found]

        self.top = TOP
        self.nouns = read_data_noun(root / "data.noun")
        self.first: dict[str, str] = {}
        with (root / "index.noun").open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("  "):
                    continue
                f = line.split()
                n_ptr = int(f[3])
                offsets = f[4 + n_ptr + 2 :]
                if offsets:
                    self.first[f[0]] = offsets[0]
        self.exc = {}
        for line in (root / "noun.exc").read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 2:
                self.exc[parts[0]] = parts[1]

    def base(self, word: str) -> str | None:
        if word in self.first:
            return word
        if word in self.exc and self.exc[word] in self.first:
            return self.exc[word]
        for suffix, repl in (("ies", "y"), ("es", ""), ("s", "")):
            if word.endswith(suffix) and word[: -len(suffix)] + repl in self.first:
                return word[: -len(suffix)] + repl
        return None

    def hypernyms(self, word: str, levels: int) -> list[str]:
        base = self.base(word)
        if base is None:
            return []
        out: list[str] = []
        seen = {self.first[base]}
        current = self.nouns[self.first[base]][1]
        while current and len(out) < levels:
            parent = current[0]
            if parent in seen:
                break
            seen.add(parent)
            lemmas, current, _ = self.nouns[parent]
            if lemmas[0].lower() in self.top:
                break
            out.append(lemmas[0].lower())
        return out


# ---------------------------------------------------------------- data
class Source:
    def __init__(self, ws: Workspace, name: str, text) -> None:
        self.name = name
        self.g = HeldOut(ws, name)
        self.kw, self.rare = self.g.query_sets(text)
        self.x = np.asarray(self.g.outputs.features, np.float64)
        self.logits = np.asarray(self.g.outputs.logits, np.float32)
        t, ok = ws.targets(text, self.g.items, "word")
        self.base_targets, self.usable = t, ok
        self.words = [
            [w for w in label_words(it) if w not in STOP_WORDS and (text.embeds_unseen_words or text.has_word(w))]
            for it in self.g.items
        ]

    def score(self, v: np.ndarray) -> dict[str, np.ndarray]:
        r10, rr = rare_recall_rr(v, self.rare)
        return {"p10": keyword_p10(v, self.kw), "r10": r10}


def expanded_targets(src: Source, emb: dict[str, np.ndarray], wn: WordNet, levels: int, alpha: float) -> np.ndarray:
    out = src.base_targets.copy()
    for i, words in enumerate(src.words):
        if not words:
            continue
        hyp = []
        for w in words:
            for h in wn.hypernyms(w, levels):
                if h not in words and h not in hyp:
                    hyp.append(h)
        if not hyp:
            continue
        own = np.mean([emb[w] for w in words], axis=0)
        extra = np.mean([emb[h] for h in hyp], axis=0)
        out[i] = unit_rows(unit_rows(own) + alpha * unit_rows(extra))
    return out


# ---------------------------------------------------------------- ridge from sufficient statistics
class Stats:
    """Per-source Σ1, Σx, Σxxᵀ, and Σxyᵀ, Σy for every target variant (columns stacked), over usable rows."""

    def __init__(self, sources: dict[str, Source], targets: dict[str, dict[str, np.ndarray]]) -> None:
        self.variants = list(next(iter(targets.values())))
        self.dims = [targets[next(iter(targets))][v].shape[1] for v in self.variants]
        self.per: dict[str, tuple] = {}
        for name, src in sources.items():
            x = src.x[src.usable]
            y = np.hstack([targets[name][v][src.usable] for v in self.variants]).astype(np.float64)
            self.per[name] = (len(x), x.sum(0), x.T @ x, x.T @ y, y.sum(0))

    def fit(self, names: Sequence[str], lam: float, weights: dict[str, float] | None = None, only: str | None = None):
        """(mu, sigma, W_std, ybar, variants) for the pooled sources; weights: per-source sample weight;
        `only`: solve for that target variant alone."""
        variants = [only] if only else self.variants
        cols = np.concatenate([self._cols(v) for v in variants])
        w = {n: (weights or {}).get(n, 1.0) for n in names}
        n_raw = sum(self.per[n][0] for n in names)
        wsum = sum(w[n] * self.per[n][0] for n in names)
        scale = n_raw / wsum  # fit_ridge rescales weights to sum to N
        n = float(n_raw)
        sx = sum(w[n_] * scale * self.per[n_][1] for n_ in names)
        sxx = sum(w[n_] * scale * self.per[n_][2] for n_ in names)
        sxy = sum(w[n_] * scale * self.per[n_][3][:, cols] for n_ in names)
        sy = sum(w[n_] * scale * self.per[n_][4][cols] for n_ in names)
        mu = sx / n
        var = np.diag(sxx) / n - mu**2
        sigma = np.sqrt(np.maximum(var, 0)) + 1e-3
        c = (sxx - n * np.outer(mu, mu)) / np.outer(sigma, sigma)
        b = (sxy - np.outer(mu, sy)) / sigma[:, None]
        c[np.diag_indices_from(c)] += lam * n / 1000.0
        wstd = np.linalg.solve(c, b)
        return mu, sigma, wstd, sy / n, variants

    def _cols(self, variant: str) -> np.ndarray:
        i = self.variants.index(variant)
        lo = sum(self.dims[:i])
        return np.arange(lo, lo + self.dims[i])

    def predict(self, model, x: np.ndarray, variant: str) -> np.ndarray:
        """Raw (not normalised) head outputs of one target variant."""
        mu, sigma, wstd, ybar, variants = model
        i = variants.index(variant)
        lo, hi = 384 * i, 384 * (i + 1)
        return ((x - mu) / sigma) @ wstd[:, lo:hi] + ybar[lo:hi]


# ---------------------------------------------------------------- zero-training vectors
def zeroshot(logits: np.ndarray, classes: np.ndarray, top_k: int = 10, temperature: float = 1.0) -> np.ndarray:
    """`zeroshot_vectors` with the softmax at a temperature."""
    return zeroshot_vectors(np.asarray(logits) / temperature, classes, top_k)


def confidence_blend(h: np.ndarray, z: np.ndarray, p: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Blend weight per picture: lo + (hi - lo) · the classifier's top probability."""
    w = lo + (hi - lo) * p
    return unit_rows((1 - w) * h + w * z)


def max_prob(logits: np.ndarray) -> np.ndarray:
    p = np.exp(logits - logits.max(1, keepdims=True))
    return (p / p.sum(1, keepdims=True)).max(1)


# ---------------------------------------------------------------- summary
def summarise(
    rows: dict[str, dict[str, dict[str, np.ndarray]]], names: list[str], base: str, default: str
) -> list[dict]:
    out = []
    for row, res in rows.items():
        per = {s: float(res[s]["p10"].mean()) for s in names if res[s]["p10"].size}
        mean = float(np.mean(list(per.values())))
        rmean = float(np.mean([res[s]["r10"].mean() for s in names if res[s]["r10"].size]))
        vs_base = stratified_bootstrap([(res[s]["p10"].tolist(), rows[base][s]["p10"].tolist()) for s in names])
        vs_def = stratified_bootstrap([(res[s]["p10"].tolist(), rows[default][s]["p10"].tolist()) for s in names])
        r_vs_base = stratified_bootstrap([(res[s]["r10"].tolist(), rows[base][s]["r10"].tolist()) for s in names])
        above = 0
        per_int = {}
        for s in names:
            a, b = res[s]["p10"], rows[base][s]["p10"]
            if a.size:
                d, lo, hi = stratified_bootstrap([(a.tolist(), b.tolist())])
                per_int[s] = (d, lo, hi)
                above += round(lo, 3) > 0
        out.append(
            {
                "row": row,
                "mean": mean,
                "r10": rmean,
                "per_source": per,
                "vs_zero": vs_base,
                "vs_default": vs_def,
                "r10_vs_zero": r_vs_base,
                "above": above,
                "per_source_vs_zero": per_int,
            }
        )
    return out


def print_summary(summary: list[dict], names: list[str], base_mean: float) -> None:
    short = [s[:6] for s in names]
    print("row".ljust(44), " ".join(f"{s:>6}" for s in short), "  mean  ×zero  >0   vs default [95%]        R@10")
    for r in summary:
        vd = r["vs_default"]
        print(
            r["row"][:44].ljust(44),
            " ".join(f"{r['per_source'].get(s, float('nan')):6.3f}" for s in names),
            f"{r['mean']:.3f} {r['mean'] / base_mean:5.2f} {r['above']:2d}",
            f" {vd[0]:+.3f} [{vd[1]:+.3f},{vd[2]:+.3f}]  {r['r10']:.3f}",
        )


# ---------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-per-source", type=int, default=500)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--only", nargs="*", default=None, help="experiment groups to run")
    ap.add_argument("--sources", nargs="*", default=None, help="the sources taking part [every prepared one]")
    ap.add_argument("--flip", action="store_true", help="also the flipped variant (extracts it if missing)")
    args = ap.parse_args()
    groups = set(args.only or ["prior", "expand", "confidence", "knn", "weights", "lambda", "misc", "nested"])

    settings = get_settings()
    ws = Workspace(settings, max_per_source=args.max_per_source)
    text, _ = ws.text("minilm")
    names = args.sources or ws.prepared_sources()
    log(f"sources: {', '.join(names)}")
    t0 = time.perf_counter()
    sources = {s: Source(ws, s, text) for s in names}
    log(
        f"features and targets of {sum(len(s.x) for s in sources.values())} pictures"
        f" in {time.perf_counter() - t0:.0f} s"
    )
    flipped: dict[str, np.ndarray] = {}
    if args.flip:
        for s, src in sources.items():
            o = ws.outputs(src.g.items, "flip")
            flipped[s] = np.asarray(o.features, np.float64)
        log("flipped features ready")

    wn = WordNet()
    all_words = sorted({w for src in sources.values() for ws_ in src.words for w in ws_})
    hyper_words = sorted({h for w in all_words for h in wn.hypernyms(w, 6)} - set(all_words))
    vocab = all_words + hyper_words
    mat = unit_rows(np.asarray(text.embed_words(vocab), np.float32))
    emb = {w: mat[i] for i, w in enumerate(vocab)}
    covered = sum(bool(wn.hypernyms(w, 1)) for w in all_words)
    log(f"{len(all_words)} label words, {covered} with a WordNet noun hypernym; {len(hyper_words)} hypernym words")

    targets: dict[str, dict[str, np.ndarray]] = {s: {"word": src.base_targets} for s, src in sources.items()}
    expand_grid = [(1, 0.3), (1, 0.6), (3, 0.3), (3, 0.6), (6, 0.3)] if "expand" in groups else []
    for s, src in sources.items():
        for levels, alpha in expand_grid:
            targets[s][f"hyp{levels}x{alpha}"] = expanded_targets(src, emb, wn, levels, alpha)
    stats = Stats(sources, targets)
    log(f"sufficient statistics for {len(stats.variants)} target variants")

    classes = {
        (lv, hw): ws.class_matrix(text, ClassPrior("wordnet", lv, hw)) if lv else ws.class_matrix(text, ClassPrior())
        for lv, hw in [(6, 0.5), (0, 0.0), (3, 0.5), (6, 0.3), (6, 0.7), (8, 0.5)]
    }
    c_def = classes[(6, 0.5)]

    # Check the sufficient-statistics solve against fit_ridge on one fold.
    hold = names[0]
    others = [s for s in names if s != hold]
    xs = np.vstack([sources[s].x[sources[s].usable] for s in others])
    ys = np.vstack([targets[s]["word"][sources[s].usable] for s in others])
    ref = fit_ridge(xs, ys, 300.0)
    from jointspace.encoders.image_encoders import run_head

    ref_v = run_head(ref, sources[hold].x.astype(np.float32))
    mine = unit_rows(stats.predict(stats.fit(others, 300.0, only="word"), sources[hold].x, "word"))
    log(f"check against fit_ridge: min cosine {float((ref_v * mine).sum(1).min()):.6f}")

    rows: dict[str, dict[str, dict[str, np.ndarray]]] = {}

    def add(row: str, s: str, v: np.ndarray) -> None:
        rows.setdefault(row, {})[s] = sources[s].score(v)

    lams = [300.0]
    if "lambda" in groups:
        lams += [100.0, 1000.0, 3000.0]
    weight_sets: dict[str, dict[str, float]] = {"": {}}
    if "weights" in groups:
        sizes = {s: float(sources[s].usable.sum()) for s in names}
        for gamma in (0.5, 1.0):
            weight_sets[f" srcbal{gamma:g}"] = {s: (500.0 / sizes[s]) ** gamma for s in names}

    # Raw head outputs per (fold, lam, weights, variant) on the held-out source; kept for later rows.
    heads: dict[tuple[str, float, str, str], np.ndarray] = {}
    fold_models: dict[str, Any] = {}
    for s in names:
        others = [o for o in names if o != s]
        for lam in lams:
            for wname, wts in weight_sets.items():
                if lam != 300.0 and wname:
                    continue
                model = stats.fit(others, lam, wts, None if (lam == 300.0 and not wname) else "word")
                if lam == 300.0 and not wname:
                    fold_models[s] = model
                for variant in stats.variants:
                    if variant != "word" and (lam != 300.0 or wname):
                        continue
                    heads[(s, lam, wname, variant)] = stats.predict(model, sources[s].x, variant)
    log("fold heads solved")

    zs_def = {s: zeroshot(sources[s].logits, c_def) for s in names}
    for s in names:
        add("zero-training wordnet-6x0.5 top10 (baseline)", s, zs_def[s])
        add("DEFAULT ridge λ300 w0.5", s, ensemble(unit_rows(heads[(s, 300.0, "", "word")]), zs_def[s], 0.5))
    BASE, DEFAULT = "zero-training wordnet-6x0.5 top10 (baseline)", "DEFAULT ridge λ300 w0.5"

    for s in names:
        h = unit_rows(heads[(s, 300.0, "", "word")])
        for w in (0.4, 0.6):
            add(f"ridge λ300 w{w}", s, ensemble(h, zs_def[s], w))

    if "prior" in groups:
        for s in names:
            h = unit_rows(heads[(s, 300.0, "", "word")])
            lg = sources[s].logits
            for (lv, hw), cm in classes.items():
                if (lv, hw) == (6, 0.5):
                    continue
                label = "prompt" if not lv else f"wordnet-{lv}x{hw}"
                z = zeroshot(lg, cm)
                add(f"zero-training {label}", s, z)
                add(f"default, prior {label}", s, ensemble(h, z, 0.5))
            for k in (1, 3, 5, 20, 50):
                z = zeroshot(lg, c_def, top_k=k)
                add(f"zero-training top{k}", s, z)
                for w in (0.5, 0.6):
                    add(f"default, prior top{k} w{w}", s, ensemble(h, z, w))
            for t in (0.5, 0.7, 1.5, 2.0, 3.0):
                z = zeroshot(lg, c_def, temperature=t)
                add(f"zero-training T{t}", s, z)
                for w in (0.5, 0.6):
                    add(f"default, prior T{t} w{w}", s, ensemble(h, z, w))
            for t, k in ((2.0, 20), (2.0, 50), (3.0, 50), (1.5, 20)):
                z = zeroshot(lg, c_def, top_k=k, temperature=t)
                for w in (0.4, 0.5, 0.6):
                    add(f"default, prior T{t} top{k} w{w}", s, ensemble(h, z, w))
        log("prior rows done")

    if "expand" in groups:
        for s in names:
            for variant in stats.variants[1:]:
                h = unit_rows(heads[(s, 300.0, "", variant)])
                for w in (0.4, 0.5, 0.6):
                    add(f"targets {variant} w{w}", s, ensemble(h, zs_def[s], w))
        log("expanded-target rows done")

    if "lambda" in groups:
        for s in names:
            for lam in lams[1:]:
                h = unit_rows(heads[(s, lam, "", "word")])
                for w in (0.4, 0.5, 0.6):
                    add(f"ridge λ{lam:g} w{w}", s, ensemble(h, zs_def[s], w))

    if "weights" in groups:
        for s in names:
            for wname in list(weight_sets)[1:]:
                h = unit_rows(heads[(s, 300.0, wname, "word")])
                for w in (0.4, 0.5, 0.6):
                    add(f"ridge λ300{wname} w{w}", s, ensemble(h, zs_def[s], w))

    if "confidence" in groups:
        # blend weight from the classifier's top probability: w = lo + (hi - lo) * p
        for s in names:
            h = unit_rows(heads[(s, 300.0, "", "word")])
            p = max_prob(sources[s].logits)[:, None]
            z = zs_def[s]
            for lo in (0.2, 0.3, 0.4, 0.5):
                for hi in (0.6, 0.7, 0.8, 0.9):
                    add(f"confidence blend {lo}->{hi}", s, confidence_blend(h, z, p, lo, hi))
            # the raw (unnormalised) head: its length as the head's own confidence
        norms = {}
        for s in names:
            others = [o for o in names if o != s]
            # median norm of the head's raw output on its own training pictures (no held-out data)
            tr = np.vstack([sources[o].x for o in others])
            raw_tr = stats.predict(fold_models[s], tr, "word")
            ybar = fold_models[s][3][:384]
            norms[s] = (
                float(np.median(np.linalg.norm(raw_tr, axis=1))),
                float(np.median(np.linalg.norm(raw_tr - ybar, axis=1))),
            )
            raw = heads[(s, 300.0, "", "word")]
            z = zs_def[s]
            for w in (0.3, 0.4, 0.5, 0.6):
                add(f"raw-norm head blend w{w}", s, unit_rows((1 - w) * raw / norms[s][0] + w * z))
            for beta in (0.5, 1.0):
                c = raw - beta * ybar
                for w in (0.4, 0.5, 0.6):
                    add(f"centred head β{beta} w{w}", s, ensemble(unit_rows(c), z, w))
        log("confidence rows done")

    if "knn" in groups:
        for s in names:
            others = [o for o in names if o != s]
            mu, sigma = fold_models[s][:2]
            tr_x = np.vstack([sources[o].x[sources[o].usable] for o in others])
            tr_y = np.vstack([targets[o]["word"][sources[o].usable] for o in others])
            a = unit_rows((tr_x - mu) / sigma)
            b = unit_rows((sources[s].x - mu) / sigma)
            sim = b @ a.T
            h = unit_rows(heads[(s, 300.0, "", "word")])
            z = zs_def[s]
            for k in (10, 30, 100):
                top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
                for temp in (0.05, 0.1):
                    near = np.exp((np.take_along_axis(sim, top, axis=1) - 1) / temp)
                    knn = unit_rows(np.einsum("nk,nkd->nd", near, tr_y[top]))
                    for hw, kw, zw in KNN_BLENDS:
                        add(f"knn{k} T{temp} head {hw} knn {kw} zs {zw}", s, unit_rows(hw * h + kw * knn + zw * z))
        log("knn rows done")

    if args.flip:
        for s in names:
            others = [o for o in names if o != s]
            xs_ = np.vstack(
                [sources[o].x[sources[o].usable] for o in others] + [flipped[o][sources[o].usable] for o in others]
            )
            ys_ = np.vstack([targets[o]["word"][sources[o].usable] for o in others] * 2)
            h_aug = run_head(fit_ridge(xs_, ys_, 300.0), sources[s].x.astype(np.float32))
            h_tta = unit_rows(stats.predict(fold_models[s], (sources[s].x + flipped[s]) / 2, "word"))
            # logits of the flipped pictures are cached too
            lg_f = np.asarray(ws.outputs(sources[s].g.items, "flip").logits, np.float32)
            z_tta = zeroshot((sources[s].logits + lg_f) / 2, c_def)
            for w in (0.5, 0.6):
                add(f"flip: extra rows w{w}", s, ensemble(h_aug, zs_def[s], w))
                add(f"flip: test-time mean w{w}", s, ensemble(h_tta, z_tta, w))
        log("flip rows done")

    if "nested" in groups:
        nested(names, sources, stats, zs_def, add)
        log("nested rows done")

    summary = summarise(rows, names, BASE, DEFAULT)
    base_mean = next(r["mean"] for r in summary if r["row"] == BASE)
    print_summary(summary, names, base_mean)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(
                {
                    "sources": {s: sources[s].g.describe() for s in names},
                    "summary": summary,
                    "per_query": {
                        r: {s: {k: v.tolist() for k, v in d.items()} for s, d in res.items()} for r, res in rows.items()
                    },
                },
                indent=1,
            )
        )
        log(f"written {args.out}")


def nested(names, sources, stats: Stats, zs_def, add: Callable[[str, str, np.ndarray], None]) -> None:
    """Per-picture blend weight w = lo + (hi - lo)·p(top class), (lo, hi) chosen per held-out source S by
    an inner leave-one-source-out over the other sources; also the fixed weight chosen the same way."""
    grid = [(lo, hi) for lo in (0.2, 0.3, 0.4, 0.5) for hi in (0.5, 0.6, 0.7, 0.8, 0.9) if hi >= lo]
    fixed = [0.3, 0.4, 0.5, 0.6, 0.7]
    pmax = {s: max_prob(sources[s].logits)[:, None] for s in names}
    inner: dict[tuple[str, str], np.ndarray] = {}
    for s in names:
        for t in names:
            if t == s:
                continue
            pool = [o for o in names if o not in (s, t)]
            inner[(s, t)] = unit_rows(stats.predict(stats.fit(pool, 300.0, only="word"), sources[t].x, "word"))
    log("inner folds solved")
    for s in names:
        h = unit_rows(stats.predict(stats.fit([o for o in names if o != s], 300.0, only="word"), sources[s].x, "word"))
        inner_sources = [t for t in names if t != s]

        def conf_mean(lh: tuple[float, float], s: str = s, inner_sources: list[str] = inner_sources) -> float:
            return float(
                np.mean(
                    [
                        sources[t].score(confidence_blend(inner[(s, t)], zs_def[t], pmax[t], *lh))["p10"].mean()
                        for t in inner_sources
                    ]
                )
            )

        def fixed_mean(w: float, s: str = s, inner_sources: list[str] = inner_sources) -> float:
            return float(
                np.mean([sources[t].score(ensemble(inner[(s, t)], zs_def[t], w))["p10"].mean() for t in inner_sources])
            )

        lo, hi = max(grid, key=conf_mean)
        bw = max(fixed, key=fixed_mean)
        add("nested confidence blend", s, confidence_blend(h, zs_def[s], pmax[s], lo, hi))
        add("nested fixed blend weight", s, ensemble(h, zs_def[s], bw))
        log(f"nested {s}: confidence {lo}->{hi}, fixed {bw}")


if __name__ == "__main__":
    main()
