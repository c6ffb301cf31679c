"""The leave-one-source-out report: markdown tables and a figure (matplotlib, Agg)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _interval(v: dict[str, float] | None) -> str:
    if not v:
        return "–"
    mark = "**" if round(v["low"], 3) > 0 else ""
    return f"{mark}{v['diff']:+.3f}{mark} [{v['low']:+.3f}, {v['high']:+.3f}]"


def markdown(report: dict[str, Any]) -> str:
    rows = report["rows"]
    sources = list(report["sources"])
    base_name = report.get("baseline")
    bases = [r for r in rows if r["kind"] == "zeroshot"]
    lines = [
        f"# Leave-one-source-out evaluation ({report['created']})",
        "",
        "For each source below, every candidate configuration trained on **all pictures of the other "
        f"prepared sources** ({', '.join(report['pool'])}) and was scored on **all pictures of the held-out "
        "source**, image vectors only (captions removed). No split of a held-out source is ever trained on "
        "or used to choose anything: epochs and blend weight are part of the candidate. The zero-training "
        "baselines (ImageNet classes read by the sentence model; `prompt`: \"a photo of a {class}\", "
        "`wordnet-LxW`: plus L WordNet hypernyms at weight W) were measured on the same galleries in the "
        "same run. Single-keyword P@10: every label word with ≥ 5 pictures in the source; rare words: label "
        "words of 1–4 pictures, recall@10 and MRR. Means weigh every source the same."
        + (
            f" At most {report['max_per_source']} pictures of each source took part (a fixed spread by id hash)."
            if report.get("max_per_source")
            else ""
        )
        + _training_cap(report),
        "",
        "## Held-out sources",
        "",
        "| source | pictures | keyword queries | rare-word queries |",
        "| --- | ---: | ---: | ---: |",
    ]
    for s, d in report["sources"].items():
        lines.append(f"| {s} | {d['images']} | {d['keyword_queries']} | {d['rare_queries']} |")
    lines += [
        "",
        "## Single-keyword P@10 per held-out source",
        "",
        "| configuration | " + " | ".join(sources) + " | mean | × " + (base_name or "–") + " |",
        "| --- | " + " | ".join("---:" for _ in sources) + " | ---: | ---: |",
    ]
    base_mean = next((r["mean"]["p10"] for r in rows if r["name"] == base_name), None)
    for r in rows:
        ratio = r["mean"]["p10"] / base_mean if base_mean and r["mean"]["p10"] is not None else None
        win = " **(winner)**" if r["name"] == report.get("winner") else ""
        lines.append(
            f"| {r['name']}{win} | "
            + " | ".join(_f(r["results"][s]["p10"]) for s in sources)
            + f" | {_f(r['mean']['p10'])} | {'–' if ratio is None else f'{ratio:.2f}'} |"
        )
    lines += [
        "",
        "## Rare words (1–4 pictures): recall@10 / MRR per held-out source",
        "",
        "| configuration | " + " | ".join(sources) + " | mean |",
        "| --- | " + " | ".join("---:" for _ in sources) + " | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | "
            + " | ".join(f"{_f(r['results'][s]['r10'])} / {_f(r['results'][s]['mrr'])}" for s in sources)
            + f" | {_f(r['mean']['r10'])} / {_f(r['mean']['mrr'])} |"
        )
    for base in bases:
        cands = [r for r in rows if r["kind"] == "candidate" and base["name"] in r.get("against", {})]
        if not cands:
            continue
        lines += [
            "",
            f"## Against {base['name']}, paired by query",
            "",
            "Single-keyword P@10 of the candidate minus the baseline's on the same queries, with the 95 % "
            "interval of the mean difference when the source's queries are resampled (paired bootstrap, "
            "10,000 draws); the mean column resamples within every source (stratified). Bold: the interval "
            "lies above 0. The last columns: how many held-out sources have their interval above 0, and "
            "the same for rare-word recall@10 (mean only).",
            "",
            "| configuration | " + " | ".join(sources) + " | mean | sources > 0 | rare R@10 mean |",
            "| --- | " + " | ".join("---:" for _ in sources) + " | ---: | ---: | ---: |",
        ]
        for r in cands:
            a = r["against"][base["name"]]
            lines.append(
                f"| {r['name']} | "
                + " | ".join(_interval(a["per_source"].get(s, {}).get("p10")) for s in sources)
                + f" | {_interval(a['p10'])} | {a['sources_above_zero']}/{a['sources_scored']} | "
                f"{_interval(a['r10'])} |"
            )
    finished = [r for r in rows if r["kind"] == "bundle"]
    if finished:
        lines += [
            "",
            "## Finished bundles",
            "",
            "Scored as they are (no training in the run). A source a bundle trained on is not held out for it.",
            "",
            "| bundle | trained on (of these sources) |",
            "| --- | --- |",
        ]
        for r in finished:
            on = r.get("trained_on")
            lines.append(
                f"| {r['name']} | {'unknown (not in its manifest)' if on is None else ', '.join(on) or 'none'} |"
            )
    cfgs = {r["candidate"]: r["config"] for r in rows if r["kind"] == "candidate"}
    if cfgs:
        lines += [
            "",
            "## Candidates",
            "",
            "| candidate | configuration | training s per fold (mean) |",
            "| --- | --- | ---: |",
        ]
        for name, cfg in cfgs.items():
            secs = [v for r in rows if r.get("candidate") == name for v in r["seconds"].values()][: len(sources)]
            lines.append(f"| {name} | `{json.dumps(cfg)}` | {sum(secs) / max(len(secs), 1):.0f} |")
    if report.get("cutoff"):
        from jointspace.encoders.evaluation.cutoff import markdown as cutoff_markdown

        lines += cutoff_markdown(report["cutoff"], report["cutoff"]["row"])
    lines += [
        "",
        "Figure: `loso.png` (single-keyword P@10 per held-out source).",
        "",
        f"Run time: {report['seconds']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def figure(report: dict[str, Any], path: Path, top: int = 6) -> Path:
    """Grouped bars: P@10 per held-out source for the zero-training rows and the best `top` candidates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = report["rows"]
    cands = sorted(
        (r for r in rows if r["kind"] == "candidate" and r["mean"]["p10"] is not None), key=lambda r: -r["mean"]["p10"]
    )[:top]
    shown = [r for r in rows if r["kind"] in ("zeroshot", "bundle")] + cands
    groups = [*report["sources"], "mean"]
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(groups)), 5))
    width = 0.8 / max(len(shown), 1)
    x = np.arange(len(groups))
    for i, r in enumerate(shown):
        vals = [r["results"][s]["p10"] or 0.0 for s in report["sources"]] + [r["mean"]["p10"] or 0.0]
        ax.bar(x + i * width, vals, width, label=r["name"], hatch="//" if r["kind"] == "zeroshot" else None)
    ax.set_xticks(x + 0.4 - width / 2, groups)
    ax.set_ylabel("single-keyword P@10 (held-out source)")
    ax.set_title("leave-one-source-out")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_loso_report(report: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report, indent=1, default=float), encoding="utf-8")
    (folder / "report.md").write_text(markdown(report), encoding="utf-8")
    figure(report, folder / "loso.png")


def _training_cap(report: dict[str, Any]) -> str:
    """What the training side took of each source, where it differs from the held-out galleries."""
    cap = report.get("train_max_per_source", report.get("max_per_source"))
    if cap == report.get("max_per_source") or (not cap and not report.get("max_per_source")):
        return ""
    if not cap:
        return " Training (head and neighbour bank) took every picture of the other sources."
    return f" Training (head and neighbour bank) took at most {cap} pictures of each other source (the same spread)."
