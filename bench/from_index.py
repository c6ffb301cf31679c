"""The space learns from the stream (issue 17): P@10 before and after `train --from-index`, and a
reindex from kept features against a full re-embedding, all in one run on the same posts.

    python bench/from_index.py                        # 600 emojione posts, embedded backend
    python bench/from_index.py --source flags --n 200
    python bench/from_index.py --es                   # Elasticsearch at JOINTSPACE_ES_URL

The source must be prepared under JOINTSPACE_HOME (`jointspace data prepare --sources emojione`)
and should be one the shipped bundle never saw (it was trained on openclipart, tuxpaint,
gcompris, scratch and kphotoalbum). Everything else runs in a fresh home under
`<home>/bench/from-index-<time>` (its `cache` links to the home's, so the text model is not
exported again), with the default settings:

1. The source's posts (a fixed spread of `--n` by id hash, in `created_at` order) are ingested as a
   stream, in `--chunks` `jointspace ingest` runs, with the shipped bundle; the workers keep each
   post's image features.
2. `train --from-index` (the library call the command makes): the newest 20 % are held out; half of
   them choose the epoch and blend weight, the other half is scored: zero-training, the shipped
   bundle (the vectors in the index) and the new head, single-keyword P@10.
3. Reindex into the new bundle from the kept features (timed), back to the shipped bundle from the
   kept features, then into the new bundle again with keeping off: a full re-embedding of the same
   posts (timed), through the same reindex code. Both timings load their models before the clock
   starts. P@10 of the scored posts is read back from the index after each reindex.

Prints a table and writes JSON to --out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from jointspace.app import settings_from_environment
from jointspace.settings import Settings


def stream_posts(settings: Settings, source: str, n: int, folder: Path, chunks: int) -> list[Path]:
    """`chunks` JSONL files of the source's posts, oldest first."""
    from jointspace.datasets.prepared import load_items

    items = load_items(settings.data_dir, sources=[source])
    items.sort(key=lambda it: hashlib.sha1(f"bench:{it.post.id}".encode()).hexdigest())
    chosen = sorted(items[:n], key=lambda it: (str(it.post.created_at or ""), it.post.id))
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    size = -(-len(chosen) // chunks)
    for c in range(chunks):
        part = chosen[c * size : (c + 1) * size]
        file = folder / f"stream-{c}.jsonl"
        file.write_text("".join(json.dumps(it.post.to_json()) + "\n" for it in part))
        files.append(file)
    return files


def index_p10(settings: Settings, bundle_dir: Path, ids: list[str], items: list[Any]) -> float:
    """Single-keyword P@10 of the scored posts, with the vectors the index holds now."""
    from jointspace.backends import open_backend
    from jointspace.encoders.bundle import load_bundle
    from jointspace.encoders.evaluation.core import Gallery, GalleryScorer
    from jointspace.encoders.from_index import MIN_QUERY_IMAGES

    bundle = load_bundle(bundle_dir, settings)
    backend = open_backend(settings, bundle.name, bundle.dim, read_only=True)
    try:
        docs = backend.get_many(ids, with_vector=True)
    finally:
        backend.close()
    scorer = GalleryScorer(Gallery("scored", items).with_queries(MIN_QUERY_IMAGES, False, False), bundle.text)
    return scorer.keyword_p10(np.stack([docs[i].vector for i in ids]))


def timed_reindex(settings: Settings, bundle_dir: Path) -> tuple[float, dict[str, Any]]:
    from jointspace.encoders.bundle import load_bundle
    from jointspace.workers.reindex import reindex

    bundle = load_bundle(bundle_dir, settings)
    bundle.image  # noqa: B018 - load the models before the clock starts
    started = time.perf_counter()
    report = reindex(settings, bundle_dir, keep_old=False, progress=False)
    return time.perf_counter() - started, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="emojione")
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--chunks", type=int, default=4, help="ingest runs the stream arrives in")
    parser.add_argument("--es", action="store_true", help="Elasticsearch at JOINTSPACE_ES_URL (else embedded)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    base = settings_from_environment()
    home = base.home / "bench" / f"from-index-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    home.mkdir(parents=True)
    (base.home / "cache").mkdir(exist_ok=True)
    (home / "cache").symlink_to(base.home / "cache")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    env["JOINTSPACE_HOME"] = str(home)
    updates: dict[str, Any] = {"home": home}
    if args.es:
        if not base.es_url:
            sys.exit("--es needs JOINTSPACE_ES_URL")
        alias = f"posts-bench{uuid.uuid4().hex[:6]}"
        env |= {"JOINTSPACE_ES_URL": base.es_url, "JOINTSPACE_ES_INDEX_ALIAS": alias}
        updates |= {"es_url": base.es_url, "es_index_alias": alias}
    settings = Settings(**updates)

    files = stream_posts(base, args.source, args.n, home / "stream", args.chunks)
    started = time.perf_counter()
    for file in files:  # the stream: one ingest run per chunk, as posts arrive
        subprocess.run(["jointspace", "ingest", str(file), "--quiet"], env=env, check=True)
    ingest_s = time.perf_counter() - started

    from jointspace.backends import open_backend
    from jointspace.backends.kept_features import KeptFeatureStore, backbone_key, features_dir
    from jointspace.encoders.bundle import load_bundle, shipped_bundle_dir
    from jointspace.encoders.from_index import FromIndexOptions, train_from_index

    from jointspace.protocols import FeatureImageEncoder

    shipped = shipped_bundle_dir()
    assert shipped is not None, "no shipped bundle"
    current = load_bundle(shipped, settings)
    image = current.image
    assert isinstance(image, FeatureImageEncoder), "the shipped bundle splits into backbone and head"
    kept = KeptFeatureStore(
        features_dir(home), backbone_key(image.backbone_spec), image.feature_dim, settings.kept_features_max
    )
    backend = open_backend(settings, current.name, current.dim, read_only=True)
    started = time.perf_counter()
    report = train_from_index(
        settings, current, backend, kept, FromIndexOptions(), home / "models" / "from-index", make_latest=False
    )
    train_s = time.perf_counter() - started
    from jointspace.encoders.from_index import collect_items

    items, _ = collect_items(backend, [k.post_id for k in kept.kept()], FromIndexOptions())
    backend.close()
    kept.close()
    scored = [it for it in items if it.split == "test"]
    scored_ids = [it.post.id for it in scored]

    kept_s, kept_report = timed_reindex(settings, report.folder)
    p10_after = index_p10(settings, report.folder, scored_ids, scored)
    back_s, back_report = timed_reindex(settings, shipped)
    p10_back = index_p10(settings, shipped, scored_ids, scored)
    full_s, full_report = timed_reindex(settings.model_copy(update={"kept_features_max": 0}), report.folder)
    p10_full = index_p10(settings, report.folder, scored_ids, scored)

    n = kept_report["indexed"]
    p = report.p10
    result = {
        "source": args.source,
        "backend": "elasticsearch" if args.es else "embedded",
        "posts": n,
        "ingest_s": round(ingest_s, 1),
        "train": {**report.to_json(), "seconds": round(train_s, 1)},
        "p10_scored_half": {
            "zero_training": p["zero_training"],
            "shipped_before": p["current_bundle"],
            "after_train_from_index": p["new_head"],
            "read_back_after_reindex_from_kept": p10_after,
            "read_back_after_full_reembedding": p10_full,
            "read_back_after_reindex_back_to_shipped": p10_back,
        },
        "reindex": {
            "from_kept_s": round(kept_s, 2),
            "full_reembedding_s": round(full_s, 2),
            "speedup": round(full_s / kept_s, 1),
            "from_kept_report": {k: kept_report[k] for k in ("indexed", "from_kept_features", "decoded")},
            "back_to_shipped_s": round(back_s, 2),
            "back_report": {k: back_report[k] for k in ("indexed", "from_kept_features", "decoded")},
            "full_report": {k: full_report[k] for k in ("indexed", "from_kept_features", "decoded")},
        },
        "load_average": os.getloadavg(),
    }
    print(
        f"{args.source}: {n} posts ingested as a stream in {len(files)} runs ({ingest_s:.0f} s), "
        f"{report.test_posts} held-out posts scored, {report.queries} one-word queries\n"
        f"  keyword P@10  zero-training {p['zero_training']:.3f}   shipped bundle {p['current_bundle']:.3f}   "
        f"after train --from-index {p['new_head']:.3f}  "
        f"({p['new_head'] / max(p['current_bundle'], 1e-9):.2f}x shipped, "
        f"{p['new_head'] / max(p['zero_training'], 1e-9):.2f}x zero-training)\n"
        f"  read back from the index: after reindex from kept {p10_after:.3f}, after full re-embedding "
        f"{p10_full:.3f}, back on shipped {p10_back:.3f}\n"
        f"  reindex of {n} posts: from kept features {kept_s:.2f} s "
        f"({kept_report['from_kept_features']} from kept, {kept_report['decoded']} decoded), full re-embedding "
        f"{full_s:.2f} s ({full_report['decoded']} decoded): {full_s / kept_s:.1f}x faster\n"
        f"  load average {os.getloadavg()[0]:.1f}"
    )
    out = args.out or home / "result.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"written {out}")
    if args.es:
        from elasticsearch import Elasticsearch

        with Elasticsearch(base.es_url, request_timeout=30) as client:
            client.indices.delete(index=f"{alias}-*", allow_no_indices=True, expand_wildcards="all")


if __name__ == "__main__":
    main()
