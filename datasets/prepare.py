"""`jointspace data prepare`: Debian and npm packages → prepared pictures and `posts.jsonl` per source, cached.

Per source the output folder holds `images/<id>.png|jpg`, `posts.jsonl` (the DESIGN's post format plus
`category`, `keywords`, `split`, `photo`), `failures.log` (pictures that could not be rendered, with the
reason), `signatures.tsv` (each kept picture's perceptual hash), `duplicates.log` (pictures dropped as
near-identical to one of an earlier source in `SOURCE_NAMES` order) and `.prepared.json`, the marker: a
re-run with the same packages, size, limit and earlier sources' signatures whose `posts.jsonl` still has
the recorded hash does nothing. `all.jsonl` beside the source folders combines them.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import shutil
import signal
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jointspace.datasets import debian, npm, raster
from jointspace.datasets.dedup import (
    MAX_ASPECT_RATIO,
    MAX_COLOUR_DIFF,
    MAX_HASH_DISTANCE,
    Signature,
    find_duplicates,
    read_signatures,
    signature_of,
    write_signatures,
)
from jointspace.datasets.items import ImageSource, RawItem, created_at_of, split_of
from jointspace.datasets.scanners import SOURCE_NAMES, get_source
from PIL import Image
from tqdm import tqdm

from jointspace.atomic_write import atomic_open
from jointspace.errors import ConfigurationError

# Bump when the output for the same package changes (captions, ids, image treatment): forces a redo.
# 4: `photo`, signatures, cross-source de-duplication; 5: signatures of the drawn box; 6: label words without codes
PIPELINE_VERSION = 6
MARKER = ".prepared.json"
POSTS = "posts.jsonl"
ALL_POSTS = "all.jsonl"
FAILURES = "failures.log"
SIGNATURES = "signatures.tsv"
DUPLICATES = "duplicates.log"
# A few openclipart files make cairosvg spin for minutes; one picture is not worth that.
RENDER_TIMEOUT_S = 60


@dataclass(frozen=True, slots=True)
class SourceReport:
    source: str
    package: str
    deb: str
    items: int
    failures: int
    seconds: float
    bytes_on_disk: int
    skipped: bool = False
    photos: int = 0  # items the scanner knows to be real photographs
    label_words: int = 0  # distinct keywords over the source's items
    duplicates: int = 0  # near-identical to a picture of an earlier source, dropped


def cache_dir_of(home: Path) -> Path:
    """Where downloaded .deb files are kept (outside the data folder, so `rm -r data` keeps them)."""
    return home / "cache" / "debs"


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def post_line(item: RawItem, image_relpath: str) -> dict[str, Any]:
    """One `posts.jsonl` object: the DESIGN's post fields, then the evaluation's extra fields."""
    created = item.created_at or created_at_of(item.id)
    return {
        "id": item.id,
        "image": image_relpath,
        "caption": item.caption,
        "hashtags": list(item.hashtags),
        "city": item.city,
        "created_at": created.isoformat(),
        "author": item.author,
        "source": item.source,
        "category": item.category,
        "keywords": list(item.keywords),
        "split": split_of(item.id),
        "photo": item.photo,
    }


def unpack(package: str, cache_dir: Path, packages_dir: Path) -> debian.UnpackedPackage:
    """A Debian package or an `npm:NAME@VERSION` one, downloaded once and unpacked."""
    if npm.is_npm(package):
        return npm.unpack(package, cache_dir, packages_dir)
    return debian.unpack(package, cache_dir, packages_dir)


RenderResult = tuple[str, "str | None", "Signature | None"]


def _render_one(job: tuple[str, ImageSource, str, int]) -> RenderResult:
    """Pool worker: render one picture to its file (or read the one an earlier run left) and hash it.
    Returns (id, None, signature) or (id, reason, None) and never raises."""
    post_id, source, out_path, size = job

    def _timeout(signum: int, frame: object) -> None:
        raise TimeoutError(f"rendering took more than {RENDER_TIMEOUT_S} s")

    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(RENDER_TIMEOUT_S)
    try:
        path = Path(out_path)
        if path.is_file():
            with Image.open(path) as done:
                return post_id, None, signature_of(done)
        image = raster.load(source, size)
        raster.save(image, path)
        return post_id, None, signature_of(image)
    except Exception as exc:  # any picture a library refuses is counted and logged, not fatal
        return post_id, f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}", None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def render_all(
    jobs: Sequence[tuple[str, ImageSource, str, int]], workers: int, label: str
) -> tuple[dict[str, str], dict[str, Signature]]:
    """Render (or reuse) and hash every job with a process pool (cairosvg and PIL hold the GIL).
    Returns id → reason for failures and id → signature for the pictures that are there."""
    failures: dict[str, str] = {}
    signatures: dict[str, Signature] = {}
    if not jobs:
        return failures, signatures
    progress = tqdm(total=len(jobs), desc=f"{label}: images", unit="img")

    def collect(results: Iterable[RenderResult]) -> None:
        for post_id, reason, signature in results:
            if reason:
                failures[post_id] = reason
            elif signature is not None:
                signatures[post_id] = signature
            progress.update()

    if workers <= 1:
        collect(map(_render_one, jobs))
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            collect(pool.imap_unordered(_render_one, jobs, chunksize=8))
    progress.close()
    return failures, signatures


def select(items: Iterable[RawItem], limit: int | None) -> list[RawItem]:
    """Items in id order (a hash, so any `limit` is a spread over all categories), unique ids checked."""
    by_id: dict[str, RawItem] = {}
    for item in items:
        if item.id in by_id:
            raise ConfigurationError(f"{item.source}: two items share the key {item.key!r}")
        by_id[item.id] = item
    chosen = [by_id[i] for i in sorted(by_id)]
    return chosen[:limit] if limit is not None else chosen


def write_jsonl(path: Path, lines: Iterable[dict[str, Any]]) -> None:
    """One JSON object a line, written atomically: a reader never sees half a file."""
    with atomic_open(path) as handle:
        for line in lines:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")


def _read_marker(out_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out_dir / MARKER).read_text())
    except (OSError, ValueError):
        return None


def is_prepared(out_dir: Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The marker when the folder already holds exactly this preparation, else None."""
    marker = _read_marker(out_dir)
    posts = out_dir / POSTS
    if not marker or marker.get("fingerprint") != fingerprint or not posts.is_file():
        return None
    return marker if marker.get("posts_sha256") == sha256_file(posts) else None


def earlier_signatures(name: str, data_dir: Path) -> dict[str, Path]:
    """The signature files of the sources before `name` in `SOURCE_NAMES` that are prepared here."""
    before = SOURCE_NAMES[: SOURCE_NAMES.index(name)]
    return {
        s: data_dir / s / SIGNATURES
        for s in before
        if (data_dir / s / SIGNATURES).is_file()
        and ((_read_marker(data_dir / s) or {}).get("fingerprint") or {}).get("pipeline") == PIPELINE_VERSION
    }


def prepare_source(
    name: str,
    data_dir: Path,
    cache_dir: Path,
    size: int = 256,
    limit: int | None = None,
    workers: int = 2,
    packages_dir: Path | None = None,
) -> SourceReport:
    """Prepare one source under `data_dir/<name>`; cached by the marker (see the module docstring).

    Packages are unpacked under `packages_dir` (default `data_dir/packages`); small test corpora
    pass the main data folder's so that the unpacked tree is shared, not copied per test.
    Pictures near-identical to one of an earlier source prepared in `data_dir` are dropped."""
    started = time.perf_counter()
    spec = get_source(name)
    unpacked = [unpack(p, cache_dir, packages_dir or data_dir / "packages") for p in spec.packages]
    package = unpacked[0]
    out_dir = data_dir / name
    earlier = earlier_signatures(name, data_dir)
    fingerprint = {
        "pipeline": PIPELINE_VERSION,
        "package": package.deb.name,
        "deb_sha256": package.sha256,
        "more_packages": {p.deb.name: p.sha256 for p in unpacked[1:]},
        "size": size,
        "limit": limit,
        "earlier": {s: sha256_file(p) for s, p in earlier.items()},
        "dedup": [MAX_HASH_DISTANCE, MAX_COLOUR_DIFF, MAX_ASPECT_RATIO],
    }
    marker = is_prepared(out_dir, fingerprint)
    if marker is not None:
        return SourceReport(**{**marker["report"], "skipped": True})

    items = select(tqdm(spec.scan(*(p.root for p in unpacked)), desc=f"{name}: metadata", unit="item"), limit)
    images_dir = out_dir / "images"
    size_stamp = images_dir / ".size"
    # Images from an interrupted run of the same size are kept; any other size starts afresh.
    if images_dir.exists() and not (size_stamp.is_file() and size_stamp.read_text().strip() == str(size)):
        shutil.rmtree(images_dir)
    images_dir.mkdir(parents=True, exist_ok=True)
    size_stamp.write_text(f"{size}\n")

    def image_path(item: RawItem) -> Path:
        return images_dir / f"{item.id}{spec.image_suffix}"

    jobs = [(item.id, item.image, str(image_path(item)), size) for item in items]
    failures, signatures = render_all(jobs, workers, name)
    keys = {item.id: item.key for item in items}
    (out_dir / FAILURES).write_text(
        "".join(f"{i}\t{keys[i]}\t{reason}\n" for i, reason in sorted(failures.items())), encoding="utf-8"
    )
    rendered = [item for item in items if item.id in signatures and image_path(item).is_file()]
    if items and not rendered:  # every picture failed: a broken install, not bad pictures; leave no marker
        raise ConfigurationError(
            f"{name}: no picture could be rendered; first reason: "
            f"{next(iter(failures.values()), 'unknown')} (see {out_dir / FAILURES})"
        )
    seen: dict[str, Signature] = {}
    for path in earlier.values():
        seen.update(read_signatures(path))
    duplicates = {d.id: d for d in find_duplicates({i.id: signatures[i.id] for i in rendered}, seen)}
    (out_dir / DUPLICATES).write_text(
        "".join(
            f"{d.id}\t{keys[d.id]}\t{d.kept_id}\t{d.distance}\n"
            for d in sorted(duplicates.values(), key=lambda d: d.id)
        ),
        encoding="utf-8",
    )
    kept = [item for item in rendered if item.id not in duplicates]
    write_signatures(out_dir / SIGNATURES, {item.id: signatures[item.id] for item in kept})
    write_jsonl(out_dir / POSTS, (post_line(item, image_path(item).relative_to(out_dir).as_posix()) for item in kept))
    wanted = {image_path(item).name for item in kept}
    for stale in images_dir.iterdir():  # pictures of items no longer selected (e.g. a smaller --limit)
        if stale.name != ".size" and stale.name not in wanted:
            stale.unlink()
    report = SourceReport(
        source=name,
        package=spec.package,
        deb=package.deb.name,
        items=len(kept),
        failures=len(failures),
        seconds=round(time.perf_counter() - started, 1),
        bytes_on_disk=folder_bytes(out_dir),
        photos=sum(item.photo for item in kept),
        label_words=len({w for item in kept for w in item.keywords}),
        duplicates=len(duplicates),
    )
    (out_dir / MARKER).write_text(
        json.dumps(
            {"fingerprint": fingerprint, "posts_sha256": sha256_file(out_dir / POSTS), "report": asdict(report)},
            indent=2,
        )
        + "\n"
    )
    return report


def write_combined(data_dir: Path) -> int:
    """`all.jsonl`: every prepared source's posts, image paths made relative to `data_dir`. Returns the count."""
    lines: list[dict[str, Any]] = []
    for name in SOURCE_NAMES:
        posts = data_dir / name / POSTS
        if not posts.is_file():
            continue
        for raw in posts.read_text(encoding="utf-8").splitlines():
            line = json.loads(raw)
            line["image"] = f"{name}/{line['image']}"
            lines.append(line)
    write_jsonl(data_dir / ALL_POSTS, lines)
    return len(lines)


def prepare(
    sources: Sequence[str], data_dir: Path, cache_dir: Path, size: int = 256, limit: int | None = None, workers: int = 2
) -> list[SourceReport]:
    """Prepare each source in turn, then rewrite `all.jsonl`. A source whose package cannot be fetched
    is reported as a ConfigurationError after the others are done, so one missing package costs only itself."""
    unknown = [s for s in sources if s not in SOURCE_NAMES]
    if unknown:
        raise ConfigurationError(f"unknown source(s) {', '.join(unknown)}; choose from {', '.join(SOURCE_NAMES)}")
    if size < 16:
        raise ConfigurationError("--size must be at least 16 pixels")
    data_dir.mkdir(parents=True, exist_ok=True)
    reports: list[SourceReport] = []
    problems: list[str] = []
    for name in sources:
        try:
            reports.append(prepare_source(name, data_dir, cache_dir, size=size, limit=limit, workers=workers))
        except ConfigurationError as exc:
            problems.append(f"{name}: {exc}")
    write_combined(data_dir)
    if problems:
        raise ConfigurationError("some sources could not be prepared:\n  " + "\n  ".join(problems))
    return reports
