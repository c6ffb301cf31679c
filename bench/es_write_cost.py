"""What indexing a post costs the Elasticsearch node itself, in CPU: the product's posts index beside
the same index with the vector stored but not indexed (no HNSW graph) and without a vector, each
as a ratio to the last (the baseline, measured in the same run).

    python bench/es_write_cost.py                  # 3 rounds of 1000 posts a variant, a node started here
    JOINTSPACE_ES_URL=... python bench/es_write_cost.py --rounds 5 --dim 384

Every variant is written as the product writes (`backend.upsert` path: `to_source`, the client's
orjson serialiser, bulk requests of `JOINTSPACE_BATCH_SIZE` posts) into a fresh index made from
the product's template; the node's CPU is read from /proc (its JVM and children). The first
round of a fresh node carries the JVM's warm-up: compare the later rounds.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from elasticsearch.helpers import bulk
from jointspace.backends.es_documents import to_source
from jointspace.es_mappings.client import connect
from jointspace.es_mappings.template import VECTOR_FIELD, index_body

from jointspace.app import settings_from_environment
from jointspace.records import Document, Post

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import cpu_seconds  # bench/ is no package: its sibling by path

VARIANTS = ("product index (int8_hnsw)", "vector stored, not indexed", "no vector (baseline)")


def body_for(variant: str, settings: Any, dim: int) -> dict[str, Any]:
    body = copy.deepcopy(index_body(settings, "bench-model", dim))
    properties = body["mappings"]["properties"]
    if variant == VARIANTS[1]:
        properties[VECTOR_FIELD] = {"type": "dense_vector", "dims": dim, "index": False}
    elif variant == VARIANTS[2]:
        del properties[VECTOR_FIELD]
    return body


def documents(n: int, dim: int, rng: np.random.Generator) -> list[Document]:
    docs = []
    for i in range(n):
        vector = rng.standard_normal(dim).astype(np.float32)
        post = Post.from_json(
            {
                "id": f"p{i}",
                "image": f"/pictures/p{i}.jpg",
                "caption": f"a red bicycle by the river at dawn #bike #city{i % 7}",
                "city": ("london", "paris", "tokyo", "oslo")[i % 4],
                "created_at": "2024-05-01T08:00:00Z",
                "author": f"a{i % 50}",
            }
        )
        docs.append(Document(post=post, vector=vector / np.linalg.norm(vector), model="bench-model"))
    return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="posts a round and variant")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dim", type=int, default=384, help="the shipped bundle's dimension by default")
    args = parser.parse_args()

    settings = settings_from_environment()
    services = []
    pids: list[int] = []
    if not settings.es_url:
        from jointspace.services.elasticsearch_local import LocalElasticsearch

        es = LocalElasticsearch(Path(tempfile.mkdtemp(prefix="bench-es-cost-")), owner_pid=os.getpid())
        services.append(es)
        state = es.start(nodes=1, heap="1g", timeout_s=300).state
        settings = settings.model_copy(update={"es_url": state.url})
        pids = [n.pid for n in state.nodes if n.pid]
    else:
        print("JOINTSPACE_ES_URL given: the node's CPU is not visible from here; only docs/s are", file=sys.stderr)
    client = connect(settings)
    rng = np.random.default_rng(0)
    results: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    try:
        for round_ in range(1, args.rounds + 1):
            docs = documents(args.n, args.dim, rng)
            for variant in VARIANTS:
                index = f"bench-es-cost-{uuid.uuid4().hex[:8]}"
                client.indices.create(index=index, **body_for(variant, settings, args.dim))
                actions = []
                for doc in docs:
                    source = to_source(doc)
                    if variant == VARIANTS[2]:
                        source.pop(VECTOR_FIELD)
                    actions.append({"_op_type": "index", "_index": index, "_id": doc.id, "_source": source})
                cpu0, t0 = cpu_seconds(pids), time.perf_counter()
                for start in range(0, len(actions), settings.batch_size):
                    _, errors = bulk(client, actions[start : start + settings.batch_size], raise_on_error=False)
                    assert not errors, errors
                client.indices.refresh(index=index)
                seconds, cpu = time.perf_counter() - t0, cpu_seconds(pids) - cpu0
                results[variant].append((args.n / seconds, 1000 * cpu / args.n))
                client.indices.delete(index=index)
                rate, per_post = args.n / seconds, 1000 * cpu / args.n
                print(
                    f"  round {round_}: {variant}: {rate:.0f} posts/s, node CPU {per_post:.2f} ms/post", file=sys.stderr
                )
    finally:
        client.close()
        for service in services:
            service.stop()

    later = slice(1, None) if args.rounds > 1 else slice(None)  # the first round warms the JVM up
    base = np.median([cpu for _, cpu in results[VARIANTS[2]][later]])
    print(f"\n{args.n} posts a round, {args.dim}-d vectors, bulk requests of {settings.batch_size}; medians of rounds")
    print(f"{'2' if args.rounds > 1 else '1'}-{args.rounds} (round 1 warms the JVM up)\n")
    print("| index | posts/s | node CPU ms/post | × baseline's CPU |")
    print("| --- | ---: | ---: | ---: |")
    for variant in VARIANTS:
        rate = np.median([r for r, _ in results[variant][later]])
        cpu = np.median([c for _, c in results[variant][later]])
        ratio = f"{cpu / base:.2f}" if pids else "-"
        print(f"| {variant} | {rate:.0f} | {cpu:.2f} | {ratio} |" if pids else f"| {variant} | {rate:.0f} | - | - |")


if __name__ == "__main__":
    main()
