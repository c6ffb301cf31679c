"""One batch's write into Elasticsearch as one bulk request against `es_bulk_in_flight` requests at
once (the default, 2): wall time of `backend.upsert` on batches of `JOINTSPACE_BATCH_SIZE` posts,
the two settings interleaved batch by batch into two indices that grow side by side, so drift and
index size fall on both alike. Prints the medians and their ratio (one request is the baseline).

    python bench/es_bulk_in_flight.py                    # 12 rounds of 1024 posts an arm, a node started here
    python bench/es_bulk_in_flight.py --rounds 20 --in-flight 3
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from jointspace.backends import open_backend

from jointspace.app import settings_from_environment

sys.path.insert(0, str(Path(__file__).resolve().parent))
from es_write_cost import documents  # bench/ is no package: its sibling by path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=12, help="rounds of --n posts an arm (the first is warm-up)")
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--in-flight", type=int, default=2, help="the arm compared with one request")
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()
    if args.rounds < 2 or args.in_flight < 2:
        parser.error(
            "--rounds and --in-flight must be at least 2 (the first round is warm-up; 1 in flight is the baseline)"
        )

    settings = settings_from_environment().model_copy(update={"home": Path(tempfile.mkdtemp(prefix="bench-bulk-"))})
    services = []
    if not settings.es_url:
        from jointspace.services.elasticsearch_local import LocalElasticsearch

        es = LocalElasticsearch(settings.home / "es", owner_pid=os.getpid())
        services.append(es)
        settings = settings.model_copy(update={"es_url": es.start(nodes=1, heap="1g", timeout_s=300).state.url})
    arms = (1, args.in_flight)
    tag = os.urandom(3).hex()
    backends = {
        k: open_backend(
            settings.model_copy(update={"es_bulk_in_flight": k, "es_index_alias": f"bench-bulk-{tag}-{k}"}),
            "bench-model",
            args.dim,
        )
        for k in arms
    }
    times: dict[int, list[float]] = {k: [] for k in arms}
    rng = np.random.default_rng(0)
    size = settings.batch_size
    try:
        for round_ in range(args.rounds):
            docs = [
                replace(d, post=replace(d.post, id=f"r{round_}-{d.post.id}")) for d in documents(args.n, args.dim, rng)
            ]
            for start in range(0, len(docs), size):
                for k in arms if (start // size + round_) % 2 == 0 else arms[::-1]:  # alternate who goes first
                    t0 = time.perf_counter()
                    result = backends[k].upsert(docs[start : start + size])
                    if round_:
                        times[k].append(time.perf_counter() - t0)
                    assert not result.errors, result.errors
            if round_:
                medians = ", ".join(f"{k} in flight {1000 * np.median(times[k]):.1f} ms" for k in arms)
                print(
                    f"  round {round_}: {(round_ + 1) * args.n} posts an index; medians so far: {medians}",
                    file=sys.stderr,
                )
    finally:
        for backend in backends.values():
            backend.close()
        if not services:  # a node of the user's: leave nothing behind on it
            from jointspace.es_mappings.client import connect

            client = connect(settings)
            client.indices.delete(index=f"bench-bulk-{tag}-*", allow_no_indices=True)
            client.close()
        for service in services:
            service.stop()
    one, many = (float(np.median(times[k])) for k in arms)
    print(
        f"\nwrites of {size} posts ({args.dim}-d), rounds 2-{args.rounds} of {args.n} posts, "
        f"indices grown to {args.rounds * args.n}"
    )
    print("| bulk requests at once | median write | × one request |")
    print("| ---: | ---: | ---: |")
    print(f"| 1 | {1000 * one:.1f} ms | 1.00 |")
    print(f"| {args.in_flight} | {1000 * many:.1f} ms | {many / one:.2f} |")


if __name__ == "__main__":
    main()
