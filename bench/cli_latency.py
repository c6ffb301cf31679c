"""How long a one-off `jointspace search 'beach+sunrise'` takes from a fresh shell, and the first
search of a fresh `jointspace serve`: the sentence model through sentence-transformers (torch, the
baseline) against ONNX Runtime (the default), in one run.

    python bench/cli_latency.py                     # 5 runs each, a temporary home of 2,000 posts
    python bench/cli_latency.py --runs 5 --posts 2000 --skip-serve

Each run is a new `jointspace` process (imports, model load, index open, query, explanation,
print), timed by wall clock from spawn to exit. The home is made fresh; the text cache (the
exported ONNX graph and the embedded vocabulary) is the user's (`JOINTSPACE_CACHE_DIR`, shared by
every home), made by an untimed first run when it is missing (minutes). Prints the load average beside the figures: the
machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

QUERY = "beach+sunrise"
RUNTIMES = ("torch", "onnx")  # baseline first
# `--before DIR`: also "before", the default runtime of an older checkout (DIR with its own .venv in
# which that checkout is installed), run in the same home and run as this code: a same-run baseline
# for changes that speed up both runtimes.
BEFORE: Path | None = None
# `--cold-cache`: a fresh, empty user cache (JOINTSPACE_CACHE_DIR) for the run, as on a machine that
# never ran jointspace: the untimed first search then pays the ONNX export (reported as first_ever).
CACHE_DIR: Path | None = None


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def make_home(home: Path, posts: int) -> None:
    """An embedded store of the default bundle with `posts` posts (random unit vectors: the query
    path's cost does not depend on them)."""
    from jointspace.app import open_bundle, open_search_backend
    from jointspace.records import Document, Post
    from jointspace.settings import Settings

    settings = Settings(home=home) if CACHE_DIR is None else Settings(home=home, cache_dir=CACHE_DIR)
    bundle = open_bundle(settings)  # reads the manifest only; no model is loaded here
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((posts, bundle.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    words = "beach sunrise dog park city night snow river bridge coffee".split()
    backend = open_search_backend(settings, bundle)
    result = backend.upsert(
        [
            Document(
                post=Post(id=f"p{i}", image=f"/bench/{i}.jpg", caption=" ".join(rng.choice(words, 4)), city="paris"),
                vector=v,
                model=bundle.name,
            )
            for i, v in enumerate(vectors)
        ]
    )
    assert not result.errors
    backend.close()


def env_for(home: Path, runtime: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    if CACHE_DIR is not None:
        env["JOINTSPACE_CACHE_DIR"] = str(CACHE_DIR)
    return env | {"JOINTSPACE_HOME": str(home), "JOINTSPACE_TEXT_RUNTIME": "onnx" if runtime == "before" else runtime}


def command(runtime: str) -> str:
    return str(BEFORE / ".venv" / "bin" / "jointspace") if runtime == "before" and BEFORE else "jointspace"


CPU_SECONDS: dict[str, list[float]] = {}


def one_search(home: Path, runtime: str) -> float:
    """Wall seconds of one search process; its CPU seconds (user + sys, which load does not inflate)
    go to CPU_SECONDS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [command(runtime), "search", QUERY], env=env_for(home, runtime), capture_output=True, text=True, timeout=600
    )
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0 or "nearest words" not in done.stdout:
        raise RuntimeError(f"search failed ({runtime}): {done.stderr[-2000:]}")
    CPU_SECONDS.setdefault(runtime, []).append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_ms(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=300) as answer:
        body = json.loads(answer.read())
    assert body["hits"], body
    return (time.perf_counter() - start) * 1000


def serve_first_search(home: Path, runtime: str, repeats: int) -> dict[str, float]:
    """Seconds from spawn until the server accepts, then the first and the following searches' ms."""
    port = free_port()
    start = time.perf_counter()
    server = subprocess.Popen(
        [command(runtime), "serve", "--port", str(port)],
        env=env_for(home, runtime),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"jointspace serve exited with {server.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        ready_s = time.perf_counter() - start
        url = f"http://127.0.0.1:{port}/search?q={urllib.parse.quote(QUERY)}"
        first = get_ms(url)
        later = [get_ms(url) for _ in range(repeats)]
        return {"ready_s": ready_s, "first_search_ms": first, "later_search_ms_p50": statistics.median(later)}
    finally:
        server.terminate()
        server.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--posts", type=int, default=2000)
    ap.add_argument("--skip-serve", action="store_true")
    ap.add_argument("--cold-cache", action="store_true", help="an empty user cache (see CACHE_DIR)")
    ap.add_argument(
        "--runtimes", nargs="+", default=list(RUNTIMES), choices=RUNTIMES, help="torch is the baseline the ratio needs"
    )
    ap.add_argument("--before", type=Path, default=None, help="an older checkout with its own .venv (see BEFORE)")
    ap.add_argument("--out", type=Path, default=Path("bench/out/cli_latency.json"))
    args = ap.parse_args()
    global BEFORE
    if args.before:
        BEFORE = args.before.resolve()
        args.runtimes = ["before", *args.runtimes]

    home = Path(tempfile.mkdtemp(prefix="jointspace-cli-latency-"))
    global CACHE_DIR
    if args.cold_cache:
        CACHE_DIR = home.with_name(home.name + "-cache")
    report: dict[str, Any] = {"query": QUERY, "posts": args.posts, "runs": args.runs, "load_before": load()}
    try:
        make_home(home, args.posts)
        for runtime in args.runtimes:  # untimed: exports the ONNX graph / embeds the vocabulary if missing
            report[f"{runtime}_first_ever_s"] = one_search(home, runtime)
            print(f"{runtime:>5}: first search in the new home {report[f'{runtime}_first_ever_s']:.2f} s", flush=True)
        for runtime in args.runtimes:
            CPU_SECONDS.pop(runtime, None)
            times = [one_search(home, runtime) for _ in range(args.runs)]
            cpu = CPU_SECONDS[runtime]
            report[f"{runtime}_search_s"] = times
            report[f"{runtime}_search_s_median"] = statistics.median(times)
            report[f"{runtime}_search_cpu_s"] = cpu
            report[f"{runtime}_search_cpu_s_median"] = statistics.median(cpu)
            print(
                f"{runtime:>5}: median {statistics.median(times):.2f} s wall, {statistics.median(cpu):.2f} s CPU "
                f"of {args.runs} fresh-shell searches (wall {', '.join(f'{t:.2f}' for t in times)}); "
                f"load {load()}",
                flush=True,
            )
        if not args.skip_serve:
            for runtime in args.runtimes:
                report[f"{runtime}_serve"] = serve = serve_first_search(home, runtime, args.runs)
                print(
                    f"{runtime:>5} serve: accepting after {serve['ready_s']:.1f} s, first search "
                    f"{serve['first_search_ms']:.0f} ms, then p50 {serve['later_search_ms_p50']:.0f} ms",
                    flush=True,
                )
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if CACHE_DIR is not None:
            shutil.rmtree(CACHE_DIR, ignore_errors=True)
    report["load_after"] = load()
    if BEFORE is not None and "onnx" in args.runtimes:
        report["onnx_over_before"] = report["onnx_search_s_median"] / report["before_search_s_median"]
        report["onnx_over_before_cpu"] = report["onnx_search_cpu_s_median"] / report["before_search_cpu_s_median"]
        print(
            f"onnx / before, median of a one-off search: wall {report['onnx_over_before']:.2f}, "
            f"CPU {report['onnx_over_before_cpu']:.2f}"
        )
    if set(RUNTIMES) <= set(args.runtimes):
        ratio = report["onnx_search_s_median"] / report["torch_search_s_median"]
        cpu_ratio = report["onnx_search_cpu_s_median"] / report["torch_search_cpu_s_median"]
        report["onnx_over_torch"], report["onnx_over_torch_cpu"] = ratio, cpu_ratio
        print(f"onnx / torch, median of a one-off search: wall {ratio:.2f}, CPU {cpu_ratio:.2f}")
    print(f"load average before {report['load_before']}, after {report['load_after']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
