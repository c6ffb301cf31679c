"""What checking saved searches costs a batch: batches of 64 posts through the pipeline with and
without 1,000 saved searches, interleaved in one run, the ratio of their times printed.

    python bench/alerts.py                        # 1,000 searches, batches of 64, 6 rounds
    python bench/alerts.py --searches 1000 --rounds 8 --out alerts.json

The real model bundle (as `jointspace ingest` loads it) embeds photo-like JPEGs (640 px, one batch's
worth made here with a fixed seed, so no prepared data is needed; every post has its own id) into
an embedded store in a temporary home. Each
round runs one batch without the check and one with it (alternating which goes first), each of new
posts; the figures are medians over rounds. Two sets of saved searches: all semantic (the matrix
product), and one tenth hybrid (the keyword side asked of the backend on the new ids). Thresholds
are set so that about `--match-rate` of (search, post) pairs match, measured on a first batch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from jointspace.workers.batch_indexing import BatchRunner
from jointspace.workers.runtime import open_context
from PIL import Image
from tqdm import tqdm

from jointspace.alerts.records import SavedSearch
from jointspace.app import settings_from_environment
from jointspace.records import Post

# Words for the saved searches' expressions (pairs of them: 1,000 distinct queries from 60 words).
WORDS = (
    "beach sunset dog cat park city street car bike tree flower mountain lake river bridge food "
    "coffee night snow rain sky cloud boat train church castle market party music concert art "
    "museum garden forest road house window door building tower light people child friend family "
    "sport football game book school office shop bus airport plane sea island desert"
).split()


def photo_like(path: Path, rng: np.random.Generator) -> None:
    """A 640×480 JPEG with smooth colour gradients, blobs and noise: decodes like a photo."""
    y, x = np.mgrid[0:480, 0:640].astype(np.float32)
    image = np.zeros((480, 640, 3), np.float32)
    for channel in range(3):
        a, b, c = rng.uniform(-1, 1, 3)
        image[..., channel] = 128 + 60 * np.sin(a * x / 90 + b * y / 70 + c * 6)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, 640), rng.uniform(0, 480), rng.uniform(30, 140)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))[..., None]
        image = image * (1 - blob) + blob * rng.uniform(0, 255, 3)
    image += rng.normal(0, 12, image.shape)
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path, quality=88)


def make_posts(folder: Path, n: int, distinct: int, seed: int = 0) -> list[Post]:
    """`n` posts over `distinct` pictures (each post its own id: every batch is new to the index, and
    decoding and embedding cost what they would for new pictures)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in tqdm(range(distinct), desc="photo-like pictures", unit="img"):
        paths.append(folder / f"{i:05d}.jpg")
        photo_like(paths[-1], rng)
    cities = ("london", "paris", "tokyo", "sydney", "lima")
    posts = []
    for i in range(n):
        words = rng.choice(WORDS, 5, replace=False)
        posts.append(
            Post(
                id=f"x{i:05d}-{uuid.uuid4().hex[:6]}",
                image=str(paths[i % distinct]),
                caption=" ".join(words),
                hashtags=tuple(words[:2]),
                city=cities[i % len(cities)],
                source="bench",
            )
        )
    return posts


def expressions(n: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    pairs = [(a, b) for a in WORDS for b in WORDS if a < b]
    return [f"{a}+{b}" for a, b in (pairs[i] for i in rng.choice(len(pairs), n, replace=False))]


def save_searches(
    context: Any, settings: Any, exprs: list[str], vectors: np.ndarray, threshold: float, hybrid_share: float
) -> None:
    """Replaces the saved searches: every tenth a hybrid one when `hybrid_share` is 0.1; a few with a city."""
    store = context.alerts.store
    for search in store.searches():
        store.remove(search.id)
    every = round(1 / hybrid_share) if hybrid_share else 0
    for i, (expr, vector) in enumerate(zip(exprs, vectors, strict=True)):
        mode = "hybrid" if every and i % every == 0 else "semantic"
        filters = "city:paris" if i % 7 == 0 else ""
        store.add(
            SavedSearch(id=f"s{i:05d}", name=expr, expression=expr, mode=mode, min_score=threshold, filters=filters),
            {context.bundle.name: vector},
        )


def timed(runner: BatchRunner, posts: list[Post]) -> tuple[float, dict[str, float]]:
    started = time.perf_counter()
    outcome = runner.run(posts)
    seconds = time.perf_counter() - started
    assert len(outcome.indexed) == len(posts), outcome.dead
    return seconds, outcome.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--searches", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--match-rate", type=float, default=0.001, help="share of (search, post) pairs that match")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    settings = settings_from_environment().model_copy(
        update={"home": tmp / "home", "es_url": None, "broker_url": None, "batch_size": args.batch}
    )
    variants = (("1,000 semantic", 0.0), ("1,000, a tenth hybrid", 0.1))
    posts = make_posts(tmp / "img", args.batch * (2 + 2 * args.rounds * len(variants)), args.batch)
    batches = [posts[i : i + args.batch] for i in range(0, len(posts), args.batch)]
    print(f"loading the model bundle and the text encoder (home {settings.home})…", file=sys.stderr)
    context = open_context(settings)  # its runner checks alerts
    plain = BatchRunner(
        context.bundle.image,
        context.bundle.name,
        context.backend,
        context.dead_letters,
        context.runner.decode_limits,
        context.executor,
    )
    exprs = expressions(args.searches)
    # "a+b" is normalise(unit(a) + unit(b)) (query/algebra.py); the words are embedded once.
    words = dict(zip(WORDS, context.bundle.text.embed_words(list(WORDS)), strict=True))
    sums = np.stack([words[e.split("+")[0]] + words[e.split("+")[1]] for e in exprs]).astype(np.float32)
    vectors = sums / np.linalg.norm(sums, axis=1, keepdims=True)

    # Warm-up (first forward passes are slow) and calibration of the threshold, neither timed.
    timed(plain, batches[0])
    stored = context.backend.get_many([p.id for p in batches[0]], with_vector=True)
    scores = vectors @ np.stack([d.vector for d in stored.values()]).T
    threshold = float(np.quantile(scores, 1 - args.match_rate))
    timed(plain, batches[1])

    rows = []
    queue = iter(batches[2:])
    for name, share in variants:
        save_searches(context, settings, exprs, vectors, threshold, share)
        assert context.alerts.compiled().queries.shape == (args.searches, context.bundle.dim)
        without: list[float] = []
        with_: list[float] = []
        check_ms: list[float] = []
        matches = 0
        for round_ in tqdm(range(args.rounds), desc=name, unit="round"):
            order = [("without", plain), ("with", context.runner)]
            for label, runner in order if round_ % 2 == 0 else order[::-1]:
                seconds, stages = timed(runner, next(queue))
                (with_ if label == "with" else without).append(seconds)
                if label == "with":
                    check_ms.append(stages.get("alerts", 0.0) * 1000)
        matches = sum(context.alerts.store.count_matches(s.id) for s in context.alerts.store.searches())
        base, checked = statistics.median(without), statistics.median(with_)
        paired = statistics.median(w / wo for w, wo in zip(with_, without, strict=True))  # each round's own pair
        rows.append(
            {
                "variant": name,
                "searches": args.searches,
                "batch": args.batch,
                "rounds": args.rounds,
                "batch_s_without": round(base, 4),
                "batch_s_with": round(checked, 4),
                "ratio": round(checked / base, 4),
                "ratio_paired_median": round(paired, 4),
                "check_ms_median": round(statistics.median(check_ms), 2),
                "check_ms_max": round(max(check_ms), 2),
                "check_share_of_batch": round(statistics.median(check_ms) / 1000 / base, 4),
                "matches_recorded": matches,
                "threshold": round(threshold, 4),
            }
        )
    context.close()

    print(
        f"\nbundle {context.bundle.name}, embedded store, {args.searches} saved searches, batches of {args.batch}, "
        f"medians over {args.rounds} rounds\n"
    )
    print(
        f"{'saved searches':<24} {'batch s without':>15} {'batch s with':>13} {'ratio':>7} {'paired':>7} "
        f"{'check ms':>9} {'check/batch':>11} {'matches':>8}"
    )
    for row in rows:
        print(
            f"{row['variant']:<24} {row['batch_s_without']:>15.3f} {row['batch_s_with']:>13.3f} {row['ratio']:>7.3f} "
            f"{row['ratio_paired_median']:>7.3f} {row['check_ms_median']:>9.1f} {row['check_share_of_batch']:>11.2%} "
            f"{row['matches_recorded']:>8}"
        )
    print(
        "\nratio: median batch time with / without; paired: median of each round's with / without;\n"
        "check ms: the `alerts` stage of the batches with the check (measured inside them);\n"
        "check/batch: that stage's median over the median batch without the check."
    )
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
