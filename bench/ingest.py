"""Ingestion benchmark: posts/s from JSONL to searchable, against the bare encoder (the ceiling) and
the naive loop (one image → one encoder call → one index request), all in one run on the same images.

    python bench/ingest.py                       # 1000 posts: bare encoder, in-process, Celery (defaults)
    python bench/ingest.py --rounds 2 --solo     # each variant twice, in turn; also the solo pool
    python bench/ingest.py --n 512 --no-celery   # in-process only (no Redis/Elasticsearch needed)

Every variant runs with the default settings (batch size, decode threads, torch threads, worker
pool and concurrency) unless an option says otherwise.

Uses the real model bundle (`open_bundle`: JOINTSPACE_MODEL, else the latest, else zero-shot).
Celery variants need Elasticsearch (several writer processes): JOINTSPACE_ES_URL, else a node is
started in a temporary home (about 25 s, not timed), and a temporary redis-server. The corpus is
photo-like: pictures from the prepared data re-encoded as 640-px JPEGs, so decoding costs what a
real feed's does. Prints a table and writes JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from jointspace.ingest.sources import open_source
from jointspace.workers.runtime import decode_limits
from PIL import Image

from jointspace.app import open_bundle, open_ingestion, open_search_backend, settings_from_environment
from jointspace.images import load_image
from jointspace.records import Document
from jointspace.settings import Settings

PHOTO_SOURCES = ("scratch", "gcompris", "kphotoalbum")


def build_corpus(folder: Path, n: int, data: Path) -> Path:
    """n posts as 640-px JPEGs (photos first, then drawings), and their JSONL. When the prepared data
    holds fewer than n pictures, the rest are distinct variants of them (a random crop of 80-95 %,
    mirrored every other round), so that every post is a different picture to decode and embed."""
    rows = [json.loads(line) for line in (data / "all.jsonl").read_text().splitlines()]
    rows.sort(key=lambda r: (r.get("source") not in PHOTO_SOURCES, r["id"]))
    pictures: list[tuple[dict[str, Any], Image.Image]] = []
    for row in rows:
        try:
            with Image.open(data / row["image"]) as opened:
                pictures.append((row, opened.convert("RGB")))
        except OSError:
            continue
        if len(pictures) == n:
            break
    if not pictures:
        raise SystemExit(f"no pictures in {data / 'all.jsonl'}: run `jointspace data prepare` or pass --data")
    (folder / "img").mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    lines = []
    for i in range(n):
        row, image = pictures[i % len(pictures)]
        round_ = i // len(pictures)
        post_id = row["id"] if round_ == 0 else f"{row['id']}-v{round_}"
        if round_:
            keep = rng.uniform(0.80, 0.95)
            w, h = round(image.width * keep), round(image.height * keep)
            x, y = rng.randint(0, image.width - w), rng.randint(0, image.height - h)
            image = image.crop((x, y, x + w, y + h))
            if round_ % 2:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        scale = 640 / max(image.size)
        image.resize((round(image.width * scale), round(image.height * scale))).save(
            folder / "img" / f"{post_id}.jpg", quality=90
        )
        lines.append(
            json.dumps(
                {
                    "id": post_id,
                    "image": f"img/{post_id}.jpg",
                    "caption": row.get("caption", ""),
                    "city": row.get("city"),
                    "source": row.get("source"),
                }
            )
        )
    (folder / "posts.jsonl").write_text("\n".join(lines) + "\n")
    return folder / "posts.jsonl"


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and of their live children (prefork pool
    processes), from /proc: what a variant costs whatever else the shared machine runs."""
    total, seen = 0.0, set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


class CpuMeter:
    """CPU seconds spent by this process, the processes given, and Elasticsearch's JVMs while a
    variant runs."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = [os.getpid(), *pids]
        self.started = cpu_seconds(self.pids)

    def seconds(self) -> float:
        return cpu_seconds(self.pids) - self.started


def fresh(settings: Settings, tag: str) -> Settings:
    """Settings writing into an index (or embedded store) of their own."""
    # A home of its own each time: with --rounds, a variant's second run would find its posts indexed.
    suffix = uuid.uuid4().hex[:6]
    return settings.model_copy(
        update={"es_index_alias": f"bench-{tag}-{suffix}", "home": settings.home / f"{tag}-{suffix}"}
    )


def ceiling(settings: Settings, jsonl: Path, batch_size: int) -> dict[str, Any]:
    bundle = open_bundle(settings)
    paths = [str(jsonl.parent / json.loads(line)["image"]) for line in jsonl.read_text().splitlines()]
    images = [load_image(p, decode_limits(settings)) for p in paths]  # decoded beforehand: not timed
    bundle.image.embed_images(images[:4])  # warm-up
    meter = CpuMeter(EXTRA_PIDS)
    started = time.perf_counter()
    for start in range(0, len(images), batch_size):
        bundle.image.embed_images(images[start : start + batch_size])
    seconds = time.perf_counter() - started
    return {"variant": "bare encoder (ceiling)", "posts": len(images), "seconds": seconds, "cpu": meter.seconds()}


def naive(settings: Settings, jsonl: Path) -> dict[str, Any]:
    bundle = open_bundle(settings)
    backend = open_search_backend(settings, bundle)
    posts = [item.post for item in open_source("jsonl", str(jsonl), settings) if item.post]
    meter = CpuMeter(EXTRA_PIDS)
    started = time.perf_counter()
    for post in posts:
        with Image.open(post.image) as image:
            vector = bundle.image.embed_images([image.convert("RGB")])[0]
        backend.upsert([Document(post=post, vector=vector, model=bundle.name)])
    backend.refresh()
    seconds = time.perf_counter() - started
    assert backend.count() == len(posts)
    backend.close()
    return {"variant": "naive loop", "posts": len(posts), "seconds": seconds, "cpu": meter.seconds()}


def in_process(settings: Settings, jsonl: Path) -> dict[str, Any]:
    bundle = open_bundle(settings)
    ingestion = open_ingestion(settings, bundle=bundle)  # as `jointspace ingest` runs it
    bundle.image.embed_images([Image.new("RGB", (224, 224))])  # warm-up, as a worker's would be
    meter = CpuMeter(EXTRA_PIDS)
    started = time.perf_counter()
    try:
        summary = ingestion.run(open_source("jsonl", str(jsonl), settings), progress=False)
        seconds = time.perf_counter() - started
    finally:
        ingestion.close()
    assert summary.searchable and summary.indexed == summary.read, summary.to_json()
    return {
        "variant": "in-process (defaults)",
        "posts": summary.read,
        "seconds": seconds,
        "cpu": meter.seconds(),
        "stages": summary.stage_seconds,
    }


def celery(
    settings: Settings, jsonl: Path, redis_url: str, workers: int | None = None, pool: str | None = None
) -> dict[str, Any]:
    """`jointspace worker` as a user starts it: no option but the log level, unless `workers`/`pool`
    are given (then torch threads are split between the worker processes, as docs/ingest.md advises)."""
    settings = settings.model_copy(
        update={
            "broker_url": redis_url,
            "celery_queue": f"bench-{uuid.uuid4().hex[:6]}",
            "dead_letter_key": f"bench:dead:{uuid.uuid4().hex[:6]}",
        }
    )
    env = {
        **os.environ,
        **{
            f"JOINTSPACE_{k.upper()}": str(v)
            for k, v in settings.model_dump().items()
            if v is not None and not isinstance(v, (dict, list))
        },
    }
    args = ["worker", "--loglevel", "info"]
    if workers is not None:
        args += ["--concurrency", str(workers)]
        env["JOINTSPACE_TORCH_THREADS"] = str(max(1, (os.cpu_count() or 2) // workers))
    if pool is not None:
        args += ["--pool", pool]
    log = settings.home / "worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [shutil.which("jointspace") or "jointspace", *args],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        # "ready." is the parent's; a prefork child loads its model after that, at worker_process_init
        # (its own log line): timing starts once every child has, as in-process timing starts after
        # its model load. The solo pool loads its model on the first batch, which is timed.
        children = 0 if pool == "solo" else (workers or 1)
        while "ready." not in log.read_text() or log.read_text().count("worker process ready:") < children:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        time.sleep(2.0)
        ingestion = open_ingestion(settings)  # as `jointspace ingest` runs it: Celery, with the broker set
        meter = CpuMeter([proc.pid, *EXTRA_PIDS])
        started_wall = time.time()
        started = time.perf_counter()
        try:
            summary = ingestion.run(open_source("jsonl", str(jsonl), settings), progress=False)
            seconds = time.perf_counter() - started
            ended_wall = time.time()
            cpu = meter.seconds()
        finally:
            ingestion.close()
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=60)
    assert summary.searchable and summary.indexed == summary.read, summary.to_json()
    # Where the wall time goes: inside tasks (Celery's own "succeeded in" per task) and outside.
    in_tasks = sum(float(x) for x in re.findall(r"succeeded in ([0-9.]+)s", log.read_text()))
    name = (
        "Celery (defaults: 1 worker, prefork pool)"
        if workers is None and pool is None
        else f"Celery, {workers or 1} worker process{'es' if (workers or 1) > 1 else ''}, {pool or 'prefork'} pool"
    )
    staged = sum(summary.stage_seconds.values())
    spans = task_spans(log.read_text())
    between = sum(max(0.0, b[0] - a[1]) for a, b in zip(spans, spans[1:], strict=False)) if spans else 0.0
    return {
        "variant": name,
        "posts": summary.read,
        "seconds": seconds,
        "cpu": cpu,
        "stages": {
            **summary.stage_seconds,
            "in tasks beyond the stages": in_tasks - staged,
            "outside tasks": seconds - in_tasks / (workers or 1),
            # ... of which: publish of the first batch until its task starts in the pool child,
            # the child idle between one task's end and the next one's start (ack, fetch, hand-off),
            # and the last task's end until the run returns (result fetch, refresh, searchable check)
            **(
                {
                    "to first task": spans[0][0] - started_wall,
                    "between tasks": between,
                    "after last task": ended_wall - max(end for _, end in spans),
                }
                if spans and (workers or 1) == 1
                else {}
            ),
        },
    }


_SUCCEEDED = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}): INFO/[^\]]+\] Task jointspace\.ingest_batch\[[^\]]+\] "
    r"succeeded in ([0-9.]+)s",
    re.MULTILINE,
)


def task_spans(log_text: str) -> list[tuple[float, float]]:
    """(start, end) wall-clock times of every batch task, from the worker log: Celery logs the end
    (with milliseconds) and the runtime of each task; the start is their difference."""
    from datetime import datetime

    spans = []
    for stamp, millis, runtime in _SUCCEEDED.findall(log_text):
        end = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").timestamp() + int(millis) / 1000
        spans.append((end - float(runtime), end))
    return sorted(spans)


EXTRA_PIDS: list[int] = []  # Elasticsearch's JVMs, when the bench started them


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=None, help="default: JOINTSPACE_BATCH_SIZE (64)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every variant this many times, in turn, and keep each one's fastest run "
        "(a shared machine's load drifts: every variant meets the same drift)",
    )
    parser.add_argument("--workers", default="", help="also Celery with these worker process counts (e.g. 2)")
    parser.add_argument(
        "--solo",
        action="store_true",
        help="also one worker with Celery's solo pool (tasks in the worker's main process)",
    )
    parser.add_argument("--naive", action="store_true", help="also the naive loop (one image per call)")
    parser.add_argument("--no-celery", action="store_true")
    parser.add_argument(
        "--es",
        action="store_true",
        help="index into Elasticsearch (JOINTSPACE_ES_URL, else a local node started here) "
        "instead of the default embedded store",
    )
    parser.add_argument("--data", type=Path, default=None, help="prepared data folder (default: the home's)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args()

    base = settings_from_environment()
    batch_size = args.batch_size or base.batch_size
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    services: list[Any] = []
    runs: list[dict[str, Any]] = []
    loads = [load_average()]
    try:
        jsonl = build_corpus(tmp / "corpus", args.n, args.data or base.data_dir)
        es_url = base.es_url if args.es else None
        if args.es and not es_url:
            from jointspace.services.elasticsearch_local import LocalElasticsearch

            es = LocalElasticsearch(tmp / "es", owner_pid=os.getpid())
            services.append(es)
            state = es.start(nodes=1, heap="1g", timeout_s=300).state
            es_url = state.url
            EXTRA_PIDS.extend(n.pid for n in state.nodes if n.pid)
        settings = base.model_copy(
            update={
                "home": tmp / "home",
                "es_url": es_url,
                "broker_url": None,
                "batch_size": batch_size,
                "model": base.model,
            }
        )
        redis_url = None
        if not args.no_celery:
            from jointspace.services.redis_local import LocalRedis

            redis = LocalRedis(tmp / "redis")
            services.append(redis)
            redis_url = redis.start()[0].url
        variants: list[tuple[str, Any]] = [("ceiling", lambda: ceiling(settings, jsonl, batch_size))]
        if args.naive:
            variants.append(("naive", lambda: naive(fresh(settings, "naive"), jsonl)))
        variants.append(("inproc", lambda: in_process(fresh(settings, "inproc"), jsonl)))
        if redis_url:
            variants.append(("celery", lambda: celery(fresh(settings, "celery"), jsonl, redis_url)))
            for n in (int(w) for w in args.workers.split(",") if w):
                variants.append((f"celery{n}", lambda n=n: celery(fresh(settings, f"celery{n}"), jsonl, redis_url, n)))
            if args.solo:
                variants.append(("solo", lambda: celery(fresh(settings, "solo"), jsonl, redis_url, 1, "solo")))
        for round_ in range(args.rounds):
            # Each round starts one variant later, and the ceiling closes every round: no variant
            # always runs first (cold caches) or last.
            order = variants[round_ % len(variants) :] + variants[: round_ % len(variants)]
            if order[-1][0] != "ceiling":
                order.append(variants[0])
            for key, run in order:
                row = run()
                row["key"], row["round"], row["load"] = key, round_, load_average()
                runs.append(row)
                print(
                    f"  round {round_ + 1}: {row['variant']}: {row['posts'] / row['seconds']:.1f} posts/s "
                    f"(load average {row['load']})",
                    file=sys.stderr,
                )
            loads.append(load_average())
    finally:
        for service in reversed(services):
            service.stop()
    # Each variant's fastest run; the ceiling's fastest too, so that no variant looks better than
    # the encoder alone because of one noisy measure of it.
    best: dict[str, dict[str, Any]] = {}
    for row in runs:
        if row["key"] not in best or row["seconds"] < best[row["key"]]["seconds"]:
            best[row["key"]] = row
    rows = list(best.values())
    top = best["ceiling"]["posts"] / best["ceiling"]["seconds"]
    slow = best["naive"]["posts"] / best["naive"]["seconds"] if "naive" in best else None
    print(
        f"\n{args.n} photo-like posts (640 px JPEG), batch {batch_size}, backend "
        f"{'Elasticsearch' if settings.es_url else 'embedded'}, {os.cpu_count()} CPUs, {args.rounds} round(s), "
        f"load average (1/5/15 min) {' → '.join(loads)}\n"
    )
    top_cpu = best["ceiling"]["cpu"] / best["ceiling"]["posts"]
    print(
        "| variant | posts/s | × bare encoder | × naive | CPU ms/post | × bare encoder's CPU | "
        "time in stages (s, summed over batches) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        rate = row["posts"] / row["seconds"]
        row["posts_per_s"] = rate
        cpu = row["cpu"] / row["posts"]
        stages = ", ".join(f"{k} {v:.1f}" for k, v in row.get("stages", {}).items())
        print(
            f"| {row['variant']} | {rate:.1f} | {rate / top:.2f} | {f'{rate / slow:.1f}' if slow else '-'} | "
            f"{cpu * 1000:.0f} | {top_cpu / cpu:.2f} | {stages} |"
        )
    print(
        "\n× bare encoder: throughput ratio, the target (≥ 0.9). × bare encoder's CPU: CPU time per post of "
        "the bare encoder over the variant's (its processes and Elasticsearch's), which the machine's other "
        "load does not move; on an idle machine the two agree when every variant keeps the cores busy."
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ingest.json").write_text(json.dumps({"best": rows, "runs": runs, "loads": loads}, indent=1))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
