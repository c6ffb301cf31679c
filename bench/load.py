"""Load benchmark: N concurrent clients for T seconds against a real `jointspace serve`, first idle,
then while `POST /posts` ingests in the background; on the embedded store or Elasticsearch.

    python bench/load.py                               # embedded, 8 clients, 30 s a phase, 1 worker
    python bench/load.py --es                          # a local Elasticsearch node, started and stopped here
    python bench/load.py --workers 1,2                 # the whole run once per `serve --workers N`
    python bench/load.py --clients 16 --seconds 60 --out bench-results/load
    python bench/load.py --url http://127.0.0.1:8000 --api-key KEY   # a server already running
                                                                     # (e.g. right after the OpenAPI fuzzer)

The home (`--home`, default `$JOINTSPACE_HOME/bench-load`) is prepared once with
`jointspace demo --prepare-only` (sample posts, indexed; the nearest-word vocabulary embedded) and
reused. Settings are the defaults a user gets; only the home, the port, the API key (writes need
one) and, with --es, the node's URL are set.

The request mix (weights in MIX): single words, arithmetic (`dog+park-car`, `2*beach-people`,
`[img:ID]+snow`), filters (city, tag, time), keyword and hybrid mode, photo searches (multipart
upload), thumbnails, and 10 % bad expressions (a 400 with the position is their expected answer).
The background ingest sends batches of posts naming pictures below the media root, alternating
with multipart uploads of picture bytes, one request at a time, for the whole second phase.

Reports per phase requests/s, p50 and p99 (all mix requests and per kind) and every non-2xx
answer by kind and status, split into expected (the bad expressions' 400s) and unexpected; the
verdicts: 0 unexpected statuses, and p99 during ingest ≤ 3 × the idle p99 measured in the same run.
Exits 1 when a verdict fails. The posts the run adds are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

API_KEY = "bench-load-key"
P99_RATIO_LIMIT = 3.0
WARMUP_S = 5.0
REQUEST_TIMEOUT_S = 60.0

# kind → weight (percent). "bad" is the 10 % of malformed expressions.
MIX = {"words": 20, "arithmetic": 15, "filters": 15, "keyword": 12, "hybrid": 12, "photo": 8, "thumbnail": 8, "bad": 10}
WORDS = ["dog", "beach", "park", "sunrise", "castle", "snow", "city", "car", "flower", "tree", "lake", "people"]
ARITHMETIC = [
    "dog+park-car",
    "2*beach-people",
    "beach+sunrise",
    "bike-park",
    "castle+snow-people",
    "\"red flower\"+garden",
    "(dog+cat)-park",
]
BAD = ["dog+(", "dog++", "*2 cat", "park-)", "2**cat", "(((", "dog+\"open", "[img:"]
EXPECTED = {"bad": {400}, "thumbnail": {200, 304}}  # every other kind: 200


@dataclass
class Sample:
    phase: str
    kind: str
    status: int | str  # an HTTP status, or "timeout" / "error: <type>"
    seconds: float


@dataclass
class Corpus:
    post_ids: list[str]
    thumbnail_ids: list[str]  # posts whose thumbnails the server served when the run began
    cities: list[str]
    tags: list[str]
    images: list[Path]  # pictures below the media root (for path-naming posts)
    photo_bytes: list[bytes]
    api_key: str  # for POST /posts and the clean-up's DELETEs


@dataclass
class PhaseReport:
    phase: str
    seconds: float
    requests: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    by_kind: dict[str, dict[str, float]]
    non_2xx: dict[str, dict[str, int]]
    unexpected: dict[str, dict[str, int]]
    load_average: list[float]
    background: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def jointspace_command() -> list[str]:
    exe = shutil.which("jointspace")
    return [exe] if exe else [sys.executable, "-c", "from jointspace.cli import main; main()"]


def server_env(home: Path, es_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOINTSPACE_")}
    env.update(JOINTSPACE_HOME=str(home), JOINTSPACE_API_KEY=API_KEY)
    for name in ("JOINTSPACE_MODEL", "JOINTSPACE_SHIPPED_MODEL"):  # which bundle, as the user chose
        if name in os.environ:
            env[name] = os.environ[name]
    if es_url:
        env["JOINTSPACE_ES_URL"] = es_url
    return env


def prepare(home: Path, posts: int, es_url: str | None) -> None:
    """Sample posts indexed into the backend (cached: a second run adds nothing)."""
    print(f"preparing {home} (first run: minutes)…", file=sys.stderr)
    run = subprocess.run(
        [*jointspace_command(), "demo", "--prepare-only", "--posts", str(posts)],
        env=server_env(home, es_url),
        capture_output=True,
        text=True,
    )
    if run.returncode:
        sys.exit(f"jointspace demo --prepare-only failed:\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}")


class External:
    """A server started elsewhere (`--url`): not started, measured or stopped here."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.start_seconds = 0.0

    def rss_mb(self) -> float:
        return float("nan")

    def stop(self) -> None:
        pass


class Server:
    """`jointspace serve --workers N` in a subprocess of its own process group."""

    def __init__(self, home: Path, es_url: str | None, workers: int, start_timeout_s: float = 900) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / f"bench-serve-{workers}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [*jointspace_command(), "serve", "--port", str(self.port), "--workers", str(workers)],
                env=server_env(home, es_url),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started = time.monotonic()
        deadline = started + start_timeout_s
        while True:
            if self.process.poll() is not None:
                sys.exit(f"jointspace serve exited ({self.process.returncode}):\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                sys.exit(f"jointspace serve did not become healthy in {start_timeout_s:.0f} s")
            time.sleep(0.5)
        self.start_seconds = time.monotonic() - started

    def rss_mb(self) -> float:
        """Resident memory of the server and all its processes (the model is loaded once per worker)."""
        total = 0
        for pid in [self.process.pid, *_descendants(self.process.pid)]:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    try:
        children = [int(c) for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()]
    except OSError:
        return found
    for child in children:
        found += [child, *_descendants(child)]
    return found


# ---------------------------------------------------------------- requests


def load_corpus(url: str, home: Path | None, api_key: str) -> Corpus:
    """Post ids, cities and tags from the server; pictures below its media root from the home's demo
    posts (none for a server of unknown home: the background ingest then only uploads); photo
    bytes from the server's own thumbnails."""
    hits = httpx.get(f"{url}/search", params={"q": "dog", "k": 100}, timeout=120).raise_for_status().json()["hits"]
    cities = [
        c["city"] if isinstance(c, dict) else c[0]
        for c in httpx.get(f"{url}/cities", timeout=60).raise_for_status().json().get("cities", [])
    ]
    tags = sorted({t for h in hits for t in h.get("hashtags", [])})[:30]
    demo = sorted((home / "data" / "demo").rglob("*.jsonl")) if home else []
    images: list[Path] = []
    for line in demo[0].read_text().splitlines() if demo else []:
        ref = json.loads(line)["image"]
        path = Path(ref) if Path(ref).is_absolute() else demo[0].parent / ref
        if path.is_file():
            images.append(path.resolve())
    photos, thumbnail_ids = [], []
    for hit in hits[:24]:
        thumb = httpx.get(f"{url}/posts/{hit['id']}/thumbnail", timeout=60)
        if thumb.status_code == 200:
            photos.append(thumb.content)
            thumbnail_ids.append(hit["id"])
    if not hits or not photos:
        sys.exit(f"{url} holds no searchable posts with pictures it serves: prepare the home first")
    return Corpus([h["id"] for h in hits], thumbnail_ids, cities or ["paris"], tags or ["dog"], images, photos, api_key)


def build_request(kind: str, rng: random.Random, corpus: Corpus) -> dict[str, Any]:
    """httpx.request keyword arguments for one request of `kind`."""
    if kind == "words":
        return {"method": "GET", "url": "/search", "params": {"q": rng.choice(WORDS)}}
    if kind == "arithmetic":
        q = rng.choice(
            ARITHMETIC
            + [f"[img:{rng.choice(corpus.post_ids)}]+snow", f"{rng.choice(WORDS)}-[img:{rng.choice(corpus.post_ids)}]"]
        )
        return {"method": "GET", "url": "/search", "params": {"q": q}}
    if kind == "filters":
        params: dict[str, Any] = {"q": rng.choice(WORDS)}
        which = rng.randrange(3)
        if which == 0:
            params["city"] = rng.choice(corpus.cities)
        elif which == 1:
            params["tag"] = rng.choice(corpus.tags)
        else:
            params["after"] = "2000-01-01"
        return {"method": "GET", "url": "/search", "params": params}
    if kind in ("keyword", "hybrid"):
        return {"method": "GET", "url": "/search", "params": {"q": rng.choice(WORDS), "mode": kind}}
    if kind == "photo":
        return {
            "method": "POST",
            "url": "/search",
            "data": {"q": "+" + rng.choice(WORDS), "k": "10"},
            "files": {"image": ("photo.jpg", rng.choice(corpus.photo_bytes), "image/jpeg")},
        }
    if kind == "thumbnail":
        return {"method": "GET", "url": f"/posts/{rng.choice(corpus.thumbnail_ids)}/thumbnail"}
    if kind == "bad":
        return {"method": "GET", "url": "/search", "params": {"q": rng.choice(BAD)}}
    raise ValueError(kind)


async def timed(client: httpx.AsyncClient, phase: str, kind: str, request: dict[str, Any]) -> Sample:
    began = time.perf_counter()
    try:
        response = await client.request(**request)
        await response.aread()
        status: int | str = response.status_code
    except httpx.TimeoutException:
        status = "timeout"
    except httpx.HTTPError as exc:
        status = f"error: {type(exc).__name__}"
    return Sample(phase, kind, status, time.perf_counter() - began)


async def client_loop(
    client: httpx.AsyncClient, phase: str, until: float, rng: random.Random, corpus: Corpus, samples: list[Sample]
) -> None:
    kinds, weights = list(MIX), list(MIX.values())
    while time.monotonic() < until:
        kind = rng.choices(kinds, weights)[0]
        samples.append(await timed(client, phase, kind, build_request(kind, rng, corpus)))


async def ingest_loop(
    client: httpx.AsyncClient,
    until: float,
    rng: random.Random,
    corpus: Corpus,
    samples: list[Sample],
    added: list[str],
    batch: int,
) -> None:
    """POST /posts, one request at a time: path-naming batches alternating with uploads."""
    n = 0
    while time.monotonic() < until:
        n += 1
        ids = [f"bench-load-{os.getpid()}-{n}-{i}" for i in range(batch)]
        if n % 2 and corpus.images:
            posts = [
                {
                    "id": i,
                    "image": str(rng.choice(corpus.images)),
                    "caption": f"load test {rng.choice(WORDS)}",
                    "city": rng.choice(corpus.cities),
                }
                for i in ids
            ]
            request: dict[str, Any] = {"method": "POST", "url": "/posts", "json": posts}
        else:
            ids = ids[:2]
            posts = [{"id": i, "caption": "uploaded in a load test"} for i in ids]
            request = {
                "method": "POST",
                "url": "/posts",
                "data": {"posts": json.dumps(posts)},
                "files": [("images", (f"{i}.jpg", rng.choice(corpus.photo_bytes), "image/jpeg")) for i in ids],
            }
        sample = await timed(client, "ingest", "post", {**request, "headers": {"X-API-Key": corpus.api_key}})
        samples.append(sample)
        if sample.status == 200:
            added += ids


async def run_phase(
    url: str, phase: str, clients: int, seconds: float, corpus: Corpus, seed: int, ingest_batch: int = 0
) -> tuple[list[Sample], list[Sample], list[str]]:
    samples: list[Sample] = []
    background: list[Sample] = []
    added: list[str] = []
    limits = httpx.Limits(max_connections=clients + 2, max_keepalive_connections=clients + 2)
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S, limits=limits) as client:
        until = time.monotonic() + seconds
        tasks = [
            client_loop(client, phase, until, random.Random(seed * 1000 + i), corpus, samples) for i in range(clients)
        ]
        if ingest_batch:
            tasks.append(ingest_loop(client, until, random.Random(seed), corpus, background, added, ingest_batch))
        await asyncio.gather(*tasks)
    return samples, background, added


# ---------------------------------------------------------------- report


def percentile_ms(seconds: list[float], q: float) -> float:
    return round(float(np.percentile(np.array(seconds) * 1000, q)), 1) if seconds else float("nan")


def unexpected_status(sample: Sample) -> bool:
    return sample.status not in EXPECTED.get(sample.kind, {200})


def summarise(phase: str, samples: list[Sample], seconds: float, load: list[float]) -> PhaseReport:
    by_kind = {}
    for kind in MIX:
        times = [s.seconds for s in samples if s.kind == kind]
        by_kind[kind] = {"n": len(times), "p50_ms": percentile_ms(times, 50), "p99_ms": percentile_ms(times, 99)}
    non_2xx: dict[str, Counter[str]] = {}
    unexpected: dict[str, Counter[str]] = {}
    for s in samples:
        if not (isinstance(s.status, int) and 200 <= s.status < 300):
            non_2xx.setdefault(s.kind, Counter())[str(s.status)] += 1
        if unexpected_status(s):
            unexpected.setdefault(s.kind, Counter())[str(s.status)] += 1
    times = [s.seconds for s in samples]
    return PhaseReport(
        phase=phase,
        seconds=seconds,
        requests=len(samples),
        requests_per_s=round(len(samples) / seconds, 2),
        p50_ms=percentile_ms(times, 50),
        p99_ms=percentile_ms(times, 99),
        by_kind=by_kind,
        non_2xx={k: dict(v) for k, v in non_2xx.items()},
        unexpected={k: dict(v) for k, v in unexpected.items()},
        load_average=load,
    )


def markdown(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | workers | phase | req/s | p50 ms | p99 ms | non-2xx (expected) | unexpected | load avg |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        for phase in run["phases"]:
            unexpected = sum(n for c in phase["unexpected"].values() for n in c.values())
            expected = sum(n for c in phase["non_2xx"].values() for n in c.values()) - unexpected
            lines.append(
                f"| {run['backend']} | {run['workers']} | {phase['phase']} | {phase['requests_per_s']} | "
                f"{phase['p50_ms']} | {phase['p99_ms']} | {expected} | {unexpected} | "
                f"{' '.join(f'{x:.1f}' for x in phase['load_average'])} |"
            )
    lines.append("")
    for run in runs:
        lines.append(
            f"- {run['backend']}, {run['workers']} worker(s): p99 during ingest / idle p99 = "
            f"{run['p99_ratio']} (limit {P99_RATIO_LIMIT}), unexpected statuses {run['unexpected']}, "
            f"{run['ingested_posts']} posts ingested in the background "
            f"({run['ingest_posts_per_s']}/s), server RSS {run['server_rss_mb']} MB, "
            f"start {run['server_start_s']} s"
        )
    return "\n".join(lines) + "\n"


def one_run(home: Path | None, es_url: str | None, workers: int, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    if args.url:
        server: Server | External = External(args.url)
    else:
        assert home is not None
        server = Server(home, es_url, workers)
        print(f"serve --workers {workers}: healthy after {server.start_seconds:.1f} s at {server.url}", file=sys.stderr)
    added: list[str] = []
    try:
        corpus = load_corpus(server.url, home, args.api_key or API_KEY)
        asyncio.run(run_phase(server.url, "warmup", args.clients, WARMUP_S, corpus, seed))
        phases = []
        load_before = list(os.getloadavg())
        idle, _, _ = asyncio.run(run_phase(server.url, "idle", args.clients, args.seconds, corpus, seed + 1))
        phases.append(summarise("idle", idle, args.seconds, [*load_before, *os.getloadavg()[:1]]))
        load_before = list(os.getloadavg())
        busy, background, added = asyncio.run(
            run_phase(
                server.url, "ingest", args.clients, args.seconds, corpus, seed + 2, ingest_batch=args.ingest_batch
            )
        )
        ingest = summarise("ingest", busy, args.seconds, [*load_before, *os.getloadavg()[:1]])
        posted = [s.seconds for s in background]
        ingest.background = {
            "requests": len(background),
            "posts": len(added),
            "statuses": dict(Counter(str(s.status) for s in background)),
            "p50_ms": percentile_ms(posted, 50),
            "p99_ms": percentile_ms(posted, 99),
        }
        phases.append(ingest)
        rss = server.rss_mb()
    finally:
        if added:
            with httpx.Client(base_url=server.url, timeout=60, headers={"X-API-Key": corpus.api_key}) as client:
                for post_id in added:
                    client.delete(f"/posts/{post_id}")
        server.stop()
    unexpected_background = sum(1 for s in background if s.status != 200)
    unexpected = sum(n for p in phases for c in p.unexpected.values() for n in c.values()) + unexpected_background
    ratio = round(phases[1].p99_ms / phases[0].p99_ms, 2) if phases[0].p99_ms else float("nan")
    return {
        "backend": args.backend_name or ("elasticsearch" if es_url else "embedded"),
        "workers": workers,
        "clients": args.clients,
        "seconds_per_phase": args.seconds,
        "phases": [asdict(p) for p in phases],
        "p99_ratio": ratio,
        "unexpected": unexpected,
        "ingested_posts": len(added),
        "ingest_posts_per_s": round(len(added) / args.seconds, 2),
        "server_rss_mb": None if rss != rss else round(rss),  # NaN: a server started elsewhere
        "server_start_s": round(server.start_seconds, 1),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase (idle, ingest)")
    parser.add_argument("--workers", default="1", help="serve --workers; a comma-separated list runs each in turn")
    parser.add_argument("--posts", type=int, default=200, help="sample posts in the bench home")
    parser.add_argument("--ingest-batch", type=int, default=8, help="posts per background POST /posts")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--es", action="store_true", help="start a local Elasticsearch node for the run")
    parser.add_argument("--es-url", default=None, help="use this Elasticsearch instead")
    parser.add_argument("--out", type=Path, default=Path("bench-results/load"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--url",
        default=None,
        help="drive this running server instead of starting one "
        "(--home: its home, for posts that name pictures by path)",
    )
    parser.add_argument("--api-key", default=None, help="with --url: the server's key (default: JOINTSPACE_API_KEY)")
    parser.add_argument("--backend-name", default=None, help="with --url: the label in the report")
    args = parser.parse_args()
    if args.url:
        args.api_key = args.api_key or os.environ.get("JOINTSPACE_API_KEY")
        if not args.api_key:
            sys.exit("--url needs the server's API key (--api-key or JOINTSPACE_API_KEY) for POST /posts")
        runs = [one_run(args.home.expanduser().resolve() if args.home else None, None, 0, args, args.seed)]
        finish(runs, args.out)
        return

    default_home = Path(os.environ.get("JOINTSPACE_HOME", Path.home() / ".jointspace")) / "bench-load"
    home = (args.home or default_home).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    node = None
    es_url = args.es_url
    if args.es and not es_url:
        from jointspace.services.elasticsearch_local import LocalElasticsearch

        node = LocalElasticsearch(home / "services" / "es", owner_pid=os.getpid())
        es_url = node.start().state.url
        print(f"Elasticsearch at {es_url}", file=sys.stderr)
    runs = []
    try:
        prepare(home, args.posts, es_url)
        for workers in [int(w) for w in str(args.workers).split(",")]:
            runs.append(one_run(home, es_url, workers, args, args.seed))
    finally:
        if node is not None:
            node.stop()
    finish(runs, args.out)


def finish(runs: list[dict[str, Any]], out: Path) -> None:
    """Writes the JSON and markdown reports, prints the table; exits 1 when a verdict fails."""
    out.mkdir(parents=True, exist_ok=True)
    name = f"load-{runs[0]['backend']}"
    (out / f"{name}.json").write_text(json.dumps(runs, indent=1) + "\n")
    table = markdown(runs)
    (out / f"{name}.md").write_text(table)
    print(table)
    failed = [r for r in runs if r["unexpected"] or not r["p99_ratio"] <= P99_RATIO_LIMIT]
    for run in failed:
        print(
            f"FAILED: {run['backend']}, {run['workers']} worker(s): {run['unexpected']} unexpected statuses, "
            f"p99 ratio {run['p99_ratio']}",
            file=sys.stderr,
        )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
