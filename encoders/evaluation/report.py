"""The evaluation report as markdown tables and PNG figures (matplotlib, Agg: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jointspace.encoders.evaluation.core import stratified_bootstrap
from jointspace.encoders.training_runs import PHOTO_SOURCES, PHOTOS


def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _get(row: dict[str, Any], gallery: str, kind: str, metric: str) -> float | None:
    return row["results"].get(gallery, {}).get(kind, {}).get(metric)


def headline_galleries(report: dict[str, Any]) -> list[str]:
    """The galleries named by the validation sets (`photos`, or the one photo source gallery if the
    photos were not pooled): the same balance of drawings and photos that chose the epoch and weight."""
    galleries = list(report["galleries"])
    out = [g for g in galleries if g in report["val_sources"]]
    if PHOTOS in report["val_sources"] and PHOTOS not in galleries:
        out += [g for g in galleries if g in PHOTO_SOURCES]
    return out


def paired_section(report: dict[str, Any], galleries: list[str], headline: list[str]) -> list[str]:
    """Each bundle minus the zero-training baseline, query by query, with a 95 % bootstrap interval."""
    rows = report["configurations"]
    base = next((r for r in rows if r["kind"] == "zeroshot"), None)
    bundles = [r for r in rows if r["kind"] == "bundle"]
    if base is None or not bundles:
        return []

    def per_query(row: dict[str, Any], g: str) -> list[float] | None:
        return row["results"].get(g, {}).get("keyword", {}).get("p10_per_query")

    def cell(groups: list[tuple[list[float], list[float]]], n: int) -> str:
        mean, low, high = stratified_bootstrap(groups)
        mark = "**" if round(low, 3) > 0 else ""
        return f"{mark}{mean:+.3f}{mark} [{low:+.3f}, {high:+.3f}] ({n})"

    lines = [
        "",
        f"## Bundles against {base['name']}, paired by query",
        "",
        "Single-keyword P@10 of the bundle minus the baseline's, on the same queries; in brackets the 95 % "
        "interval of that mean when each gallery's queries are resampled (paired bootstrap, 10,000 draws), "
        "then the number of queries. Bold: the interval lies above 0, so the gain does not hang on a lucky "
        "few queries.",
        "",
        "| bundle | " + " | ".join(galleries) + f" | mean ({', '.join(headline)}) |",
        "| --- | " + " | ".join("---:" for _ in galleries) + " | ---: |",
    ]
    for r in bundles:
        cells, pooled = [], []
        for g in galleries:
            a, b = per_query(r, g), per_query(base, g)
            if not a or not b:
                cells.append("–")
                continue
            cells.append(cell([(a, b)], len(a)))
            if g in headline:
                pooled.append((a, b))
        cells.append(cell(pooled, sum(len(a) for a, _ in pooled)) if pooled else "–")
        lines.append(f"| {r['name']} | " + " | ".join(cells) + " |")
    return lines


def markdown(report: dict[str, Any]) -> str:
    galleries = list(report["galleries"])
    rows = report["configurations"]
    headline = headline_galleries(report)
    lines = [
        f"# Evaluation report ({report['created']})",
        "",
        f"Heads trained on the train split of **{', '.join(report['train_sources'])}**; epochs and the "
        f"ensemble weight chosen on validation: "
        f"**{report.get('validation') or 'val split of ' + ', '.join(report['val_sources'])}**. "
        "Photo sources are split 40/30/30 by id hash (train / val / test part): only the test part is "
        "reported below. "
        "Queries see image vectors only (no caption). Relevant = the query word is among the image's label "
        "words (keywords, title, category); compound `a+b` needs both. Single-keyword queries: every label "
        "word with ≥ 5 images in the gallery. A query the text encoder cannot embed scores 0 (coverage column).",
        "",
        *(
            [
                f"Grid heads: at most {report['grid']['epochs']} epochs, "
                f"{report['grid']['limit'] or 'all'} training items, augmentation "
                f"{', '.join(report['grid']['augment']) if report['grid']['augment'] else 'none'}"
                f" (cached variants); each head also with the zero-training vector blended in at the weight "
                f"chosen on validation (\"ensemble\").",
                "",
            ]
            if report.get("grid")
            else []
        ),
        "## Galleries",
        "",
        "| gallery | images | split | keyword / compound / seed queries |",
        "| --- | ---: | --- | --- |",
    ]
    for g, info in report["galleries"].items():
        q = info["queries"]
        lines.append(f"| {g} | {info['images']} | {info['split']} | {q['keyword']} / {q['compound']} / {q['seed']} |")
    lines += [
        "",
        "## Single-keyword P@10 per gallery",
        "",
        f"The last column is the mean over {', '.join(headline) or 'no gallery'}: the test parts of the "
        "validation sets' sources, weighted equally, as selection weighs them.",
        "",
        "| configuration | " + " | ".join(galleries) + f" | mean ({', '.join(headline)}) |",
        "| --- | " + " | ".join("---:" for _ in galleries) + " | ---: |",
    ]
    for r in rows:
        vals = [_get(r, g, "keyword", "p10") for g in galleries]
        un = [v for g, v in zip(galleries, vals, strict=True) if g in headline and v is not None]
        lines.append(
            f"| {r['name']} | " + " | ".join(_f(v) for v in vals) + f" | {_f(sum(un) / len(un) if un else None)} |"
        )
    lines += paired_section(report, galleries, headline)
    for g in galleries:
        lines += [
            "",
            f"## {g}: all metrics",
            "",
            "| configuration | kw P@5 | kw P@10 | kw mAP | kw coverage | 2-word P@10 | 2-word mAP "
            "| seed P@10 | seed mAP | image→image P@10 |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in rows:
            lines.append(
                f"| {r['name']} | "
                + " | ".join(
                    _f(_get(r, g, k, m))
                    for k, m in (
                        ("keyword", "p5"),
                        ("keyword", "p10"),
                        ("keyword", "ap"),
                        ("keyword", "coverage"),
                        ("compound", "p10"),
                        ("compound", "ap"),
                        ("seed", "p10"),
                        ("seed", "ap"),
                        ("image", "p10"),
                    )
                )
                + " |"
            )
    w = report.get("winner")
    if w:
        lines += [
            "",
            "## Winner (chosen on validation, not on these test figures)",
            "",
            f"Text encoder **{w['text']}**, loss **{w['loss']}**, **{w['targets']}-level** targets, ensemble "
            f"weight of the zero-training vector {w['zeroshot_weight']:g} (validation keyword P@10 "
            f"{w['validation_keyword_p10']:.3f} on {w['validation']}).",
        ]
    lines += [
        "",
        "Figures: `p10.png` (keyword P@10 per configuration and gallery), `curves.png` "
        "(validation keyword P@10 per epoch of each trained head).",
        "",
        f"Run time: {report['seconds']:.0f} s.",
        "",
    ]
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
