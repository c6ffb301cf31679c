"""Write encoders/imagenet_wordnet.json: each ImageNet class's WordNet lemmas, gloss and hypernym chain.

    python scripts/imagenet_wordnet.py            # maintainers only; the output is committed

ImageNet's 1,000 classes are WordNet 3.0 noun synsets (timm ships their ids in index order). Debian's
`wordnet-base` ships WordNet 3.0's `data.noun`, whose lines hold each synset's lemmas, hypernym
pointers (`@`, `@i`) and gloss. The package is fetched like the project's data (`apt-get download`,
`dpkg -x`, never installed) and read once here; the small result is committed so that a fresh install
(and the zero-training fallback bundle) needs neither apt nor WordNet at run time. WordNet's licence
allows redistribution with its notice, which the file carries.
"""

from __future__ import annotations

import json
from pathlib import Path

from jointspace.datasets.debian import unpack

OUT = Path(__file__).resolve().parents[1] / "encoders" / "imagenet_wordnet.json"
LEVELS = 8  # hypernyms kept above each class, nearest first (the top levels, "entity" and so on, are dropped)
TOP = {"entity", "physical entity", "abstraction", "object", "whole", "physical object", "matter"}


def read_data_noun(path: Path) -> dict[str, tuple[list[str], list[str], str]]:
    """offset → (lemmas, hypernym offsets, gloss) for every noun synset (format: wndb(5WN))."""
    out: dict[str, tuple[list[str], list[str], str]] = {}
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith("  "):  # the licence header
                continue
            data, _, gloss = line.partition(" | ")
            f = data.split()
            offset, n_words = f[0], int(f[3], 16)
            lemmas = [f[4 + 2 * i].replace("_", " ") for i in range(n_words)]
            at = 4 + 2 * n_words
            n_ptr = int(f[at])
            hyper = [f[at + 1 + 4 * i + 1] for i in range(n_ptr) if f[at + 1 + 4 * i] in ("@", "@i")]
            out[offset] = (lemmas, hyper, gloss.strip())
    return out


def chain(offset: str, nouns: dict[str, tuple[list[str], list[str], str]]) -> list[list[str]]:
    """The lemmas of the first-hypernym path upwards, nearest first, without WordNet's top levels."""
    out: list[list[str]] = []
    seen = {offset}
    current = nouns[offset][1]
    while current and len(out) < LEVELS:
        parent = current[0]
        if parent in seen:
            break
        seen.add(parent)
        lemmas, current, _ = nouns[parent]
        if lemmas[0].lower() in TOP:
            break
        out.append(lemmas)
    return out


def main() -> None:
    import timm
    from jointspace.datasets.prepare import cache_dir_of

    from jointspace.settings import get_settings

    settings = get_settings()
    package = unpack("wordnet-base", cache_dir_of(settings.home), settings.data_dir / "packages")
    root = package.root / "usr" / "share"
    nouns = read_data_noun(root / "wordnet" / "data.noun")
    synsets = (Path(timm.__file__).parent / "data" / "_info" / "imagenet_synsets.txt").read_text().split()
    if len(synsets) != 1000:
        raise SystemExit(f"expected 1000 ImageNet synsets, timm lists {len(synsets)}")
    classes = []
    for wnid in synsets:
        lemmas, _, gloss = nouns[wnid[1:]]
        classes.append(
            {
                "synset": wnid,
                "lemmas": lemmas,
                "hypernyms": chain(wnid[1:], nouns),
                "gloss": gloss.split("; \"")[0].strip('"; '),
            }
        )
    licence = (root / "doc" / "wordnet-base" / "copyright").read_text(encoding="utf-8")
    licence = licence.split("License: WordNet3.0", 1)[1].split("\nFiles:", 1)[0]
    OUT.write_text(
        json.dumps(
            {
                "source": f"WordNet 3.0 data.noun from Debian {package.deb.name}",
                "licence": " ".join(licence.split()).replace(" . ", "\n"),
                "classes": classes,
            },
            indent=0,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB, {len(classes)} classes)")


if __name__ == "__main__":
    main()
