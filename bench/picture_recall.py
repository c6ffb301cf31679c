"""recall@k of Elasticsearch's kNN on picture vectors, for word queries and picture queries.

    JOINTSPACE_HOME=... jointspace data prepare                 # the pictures (once)
    JOINTSPACE_ES_URL=... python bench/picture_recall.py --data $JOINTSPACE_HOME/data \
        --es-configs bbq_hnsw int8_hnsw --num-candidates 50 100 200 500 --k 10

The prepared pictures (every source) are embedded once with the bundle the settings load (cached
in --cache); --queries of them are held out as picture queries, and words of their captions are
the word queries: a user's usual query is words among pictures, a text vector outside the
pictures' clusters, where an HNSW walk finds the neighbours later than for a picture query (the
real-vector frontier of bench/scale.py queries sentence vectors with sentence vectors). Each
configuration is an index built through the product's own backend, queried through its `knn`
(rescoring as configured), unfiltered and with a city filter keeping 1/10, against numpy exact
search in the same run. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from jointspace.backends.elasticsearch import ElasticsearchBackend
from jointspace.encoders.bundle import open_model_bundle
from PIL import Image
from tqdm import tqdm

from jointspace.protocols import ModelBundle
from jointspace.records import Document, Filters, Post
from jointspace.settings import Settings


def picture_vectors(data: Path, cache: Path, bundle: ModelBundle) -> tuple[np.ndarray, list[dict]]:
    """(vectors, posts) in a fixed shuffled order, embedded once per bundle."""
    posts = [json.loads(line) for line in (data / "all.jsonl").read_text(encoding="utf-8").splitlines()]
    posts = [posts[i] for i in np.random.default_rng(17).permutation(len(posts))]
    file = cache / f"pictures-{bundle.name}-{len(posts)}.npy"
    if file.is_file():
        return np.load(file), posts
    chunks = []
    for i in tqdm(range(0, len(posts), 64), desc="embed pictures", unit="batch"):
        images = []
        for post in posts[i : i + 64]:
            with Image.open(data / post["image"]) as image:
                images.append(image.convert("RGB"))
        chunks.append(np.asarray(bundle.image.embed_images(images), dtype=np.float32))
    vectors = np.concatenate(chunks)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(file, vectors)
    return vectors, posts


def caption_words(posts: list[dict], count: int) -> list[str]:
    words: list[str] = []
    for post in posts:
        for word in (post.get("caption") or "").lower().split():
            if word.isalpha() and len(word) > 3 and word not in words:
                words.append(word)
    return words[:count]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="a prepared data folder (all.jsonl + pictures)")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "jointspace" / "bench")
    ap.add_argument("--queries", type=int, default=500, help="pictures held out as picture queries")
    ap.add_argument("--words", type=int, default=300, help="word queries, from the held-out captions")
    ap.add_argument("--es-configs", nargs="+", default=["bbq_hnsw", "int8_hnsw"])
    ap.add_argument("--num-candidates", nargs="*", type=int, default=[], help="besides the default")
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args()
    settings = Settings()
    if not settings.es_url:
        raise SystemExit("set JOINTSPACE_ES_URL (jointspace es start)")
    bundle = open_model_bundle(settings)
    model = bundle.name
    vectors, posts = picture_vectors(args.data, args.cache, bundle)
    held, base = vectors[: args.queries], vectors[args.queries :]
    base_posts = posts[args.queries :]
    words = caption_words(posts[: args.queries], args.words)
    word_vectors = np.asarray(bundle.text.embed_words(words), dtype=np.float32)
    word_vectors /= np.linalg.norm(word_vectors, axis=1, keepdims=True)
    cities = np.array([f"c{i % 10}" for i in range(len(base))])
    filters = {"none": (None, np.ones(len(base), bool)), "1/10": (Filters(cities=("c0",)), cities == "c0")}
    k = args.k
    queries_by_kind = {"picture": held, "word": word_vectors}
    # The exact top-k, once: the same for every configuration and candidate count.
    truth = {
        (kind, name): [set(np.argsort(-row)[:k]) for row in np.where(keep[None, :], queries @ base.T, -np.inf)]
        for kind, queries in queries_by_kind.items()
        for name, (_, keep) in filters.items()
    }
    rows = []
    for options in args.es_configs:
        alias = f"picture-recall-{options.replace('_', '-')}"
        config = Settings(es_url=settings.es_url, es_index_alias=alias, es_index_options=options)
        backend = ElasticsearchBackend.open(config, model, base.shape[1])
        try:
            if backend.count() != len(base):
                started = time.perf_counter()
                for i in tqdm(range(0, len(base), 1000), desc=f"index {options}"):
                    docs = [
                        Document(
                            post=Post(id=base_posts[j]["id"], image=base_posts[j]["image"], city=str(cities[j])),
                            vector=base[j],
                            model=model,
                        )
                        for j in range(i, min(i + 1000, len(base)))
                    ]
                    assert not backend.upsert(docs).errors
                backend.refresh()
                print(f"{options}: {len(base)} pictures indexed in {time.perf_counter() - started:.0f} s")
            position = {p["id"]: j for j, p in enumerate(base_posts)}
            for candidates in [None, *args.num_candidates]:
                for kind, queries in queries_by_kind.items():
                    for name, (filt, _) in filters.items():
                        recalls, latencies = [], []
                        for query, want in zip(queries, truth[(kind, name)], strict=True):
                            started = time.perf_counter()
                            hits = backend.knn(query, k, num_candidates=candidates, filters=filt)
                            latencies.append(1000 * (time.perf_counter() - started))
                            recalls.append(len({position[h.post.id] for h in hits} & want) / k)
                        used = config.num_candidates(k, candidates)
                        rows.append((options, used, kind, name, float(np.mean(recalls)), statistics.median(latencies)))
                        print(rows[-1], flush=True)
        finally:
            backend.close()
    print(f"\n{len(base)} pictures, {len(held)} picture queries, {len(words)} word queries, k = {k}, bundle {model}\n")
    print(
        f"| index | num_candidates | queries | filter | recall@{k} | p50 ms |\n| --- | ---: | --- | --- | ---: | ---: |"
    )
    for options, used, kind, name, recall, p50 in rows:
        print(f"| {options} | {used} | {kind} | {name} | {recall:.3f} | {p50:.1f} |")


if __name__ == "__main__":
    main()
