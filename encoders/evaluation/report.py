"""The evaluation report as markdown tables and PNG figures (matplotlib, Agg: no display needed)."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _get(row: dict[str, Any], gallery: str, kind: str, metric: str) -> float | None:
    return row["results"].get(gallery, {}).get(kind, {}).get(metric)


def markdown(report: dict[str, Any]) -> str:
    galleries = list(report["galleries"])
    rows = report["configurations"]
    unseen = [g for g, info in report["galleries"].items() if info["split"].startswith("all")
              or g not in report["train_sources"]]
    lines = [f"# Evaluation report ({report['created']})", "",
             f"Heads trained on the train split of **{', '.join(report['train_sources'])}**; epochs and the "
             f"ensemble weight chosen on validation: "
             f"**{report.get('validation') or 'val split of ' + ', '.join(report['val_sources'])}**. "
             "Photo sources are split 50/50 by id hash: the val half takes part in that choice, only the test "
             "half is reported below. "
             "Queries see image vectors only (no caption). Relevant = the query word is among the image's label "
             "words (keywords, title, category); compound `a+b` needs both. Single-keyword queries: every label "
             "word with ≥ 5 images in the gallery. A query the text encoder cannot embed scores 0 (coverage column).",
             "", *([f"Grid heads: at most {report['grid']['epochs']} epochs, "
                   f"{report['grid']['limit'] or 'all'} training items, augmentation "
                   f"{', '.join(report['grid']['augment']) if report['grid']['augment'] else 'none'}"
                   f" (cached variants); each head also with the zero-training vector blended in at the weight "
                   f"chosen on validation (\"ensemble\").", ""] if report.get("grid") else []),
             "## Galleries", "", "| gallery | images | split | keyword / compound / seed queries |",
             "| --- | ---: | --- | --- |"]
    for g, info in report["galleries"].items():
        q = info["queries"]
        lines.append(f"| {g} | {info['images']} | {info['split']} | {q['keyword']} / {q['compound']} / {q['seed']} |")
    lines += ["", "## Single-keyword P@10 per gallery", "",
              "| configuration | " + " | ".join(galleries) + " | mean (not trained on) |",
              "| --- | " + " | ".join("---:" for _ in galleries) + " | ---: |"]
    for r in rows:
        vals = [_get(r, g, "keyword", "p10") for g in galleries]
        un = [v for g, v in zip(galleries, vals) if g in unseen and v is not None]
        lines.append(f"| {r['name']} | " + " | ".join(_f(v) for v in vals) + f" | {_f(sum(un) / len(un) if un else None)} |")
    for g in galleries:
        lines += ["", f"## {g}: all metrics", "",
                  "| configuration | kw P@5 | kw P@10 | kw mAP | kw coverage | 2-word P@10 | 2-word mAP | seed P@10 | seed mAP | image→image P@10 |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in rows:
            lines.append(f"| {r['name']} | " + " | ".join(_f(_get(r, g, k, m)) for k, m in (
                ("keyword", "p5"), ("keyword", "p10"), ("keyword", "ap"), ("keyword", "coverage"),
                ("compound", "p10"), ("compound", "ap"), ("seed", "p10"), ("seed", "ap"), ("image", "p10"))) + " |")
    w = report.get("winner")
    if w:
        lines += ["", "## Winner (chosen on validation, not on these test figures)", "",
                  f"Text encoder **{w['text']}**, loss **{w['loss']}**, **{w['targets']}-level** targets, ensemble "
                  f"weight of the zero-training vector {w['zeroshot_weight']:g} (validation keyword P@10 "
                  f"{w['validation_keyword_p10']:.3f} on {w['validation']})."]
    lines += ["", "Figures: `p10.png` (keyword P@10 per configuration and gallery), `curves.png` "
              "(validation keyword P@10 per epoch of each trained head).", "",
              f"Run time: {report['seconds']:.0f} s.", ""]
    return "\n".join(lines)


def figures(report: dict[str, Any], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out = []
    rows = report["configurations"]
    galleries = list(report["galleries"])
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(rows)), 5))
    width = 0.8 / max(len(galleries), 1)
    x = np.arange(len(rows))
    for i, g in enumerate(galleries):
        ax.bar(x + i * width, [_get(r, g, "keyword", "p10") or 0.0 for r in rows], width, label=g)
    ax.set_xticks(x + 0.4 - width / 2, [r["name"] for r in rows], rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("single-keyword P@10")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.append(folder / "p10.png")
    fig.savefig(out[-1], dpi=110)
    plt.close(fig)

    curves = [r for r in rows if r.get("history") and r["kind"] in ("head", "bundle")]
    if curves:
        fig, ax = plt.subplots(figsize=(8, 5))
        for r in curves:
            h = r["history"]
            ax.plot([e["epoch"] for e in h], [e["val"] for e in h], label=r["name"].replace("head ", ""))
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation keyword P@10")
        ax.legend(fontsize=6)
        fig.tight_layout()
        out.append(folder / "curves.png")
        fig.savefig(out[-1], dpi=110)
        plt.close(fig)
    return out


def write_report(report: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.md").write_text(markdown(report), encoding="utf-8")
    figures(report, folder)
