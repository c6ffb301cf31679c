"""`jointspace demo`: a small real corpus, indexed once, then the page.

The corpus comes from the data stage's `build_small_corpus`: drawings (Debian's tuxpaint stamps
and openclipart) and photos (kphotoalbum's demo album, scratch's backdrops). Posts that carry no
city are dealt to a few cities by a hash of their id, as the InstaCities fixture does, so that
the city filter has something to show; photos keep the place they have. Every step is cached: a
second run only checks that the posts are indexed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from jointspace.api.container import ApiContainer
from jointspace.ingest.sources.posts import PostsSource

from jointspace.atomic_write import write_text_atomic
from jointspace.settings import Settings

DEMO_CITIES = ("london", "paris", "sydney", "tokyo", "new york")
DEMO_SOURCES = ("tuxpaint", "openclipart", "kphotoalbum", "scratch")
DEMO_POSTS = "demo.jsonl"


@dataclass(frozen=True, slots=True)
class DemoIndexReport:
    posts: int
    added: int
    failed: dict[str, str]


def demo_dir(settings: Settings) -> Path:
    # Under the data dir, so below the default media root and served by the API.
    return settings.data_dir / "demo"


def prepare_demo_posts(settings: Settings, n: int = 200, sources: Sequence[str] = DEMO_SOURCES) -> Path:
    """The demo's JSONL (image paths absolute), built on first call; blocks while packages are
    fetched and pictures rasterised (a minute or so the first time, instant after)."""
    from jointspace.datasets.fixtures import build_small_corpus
    from jointspace.datasets.prepared import read_posts_file

    folder = demo_dir(settings)
    corpus = build_small_corpus(folder / "corpus", n=n, sources=sources, size=256, workers=1, settings=settings)
    target = folder / DEMO_POSTS  # rewritten each run: reading a few hundred lines is instant
    base = datetime(2024, 1, 1, tzinfo=UTC)
    lines = []
    for item in read_posts_file(corpus):
        digest = int(hashlib.sha1(item.id.encode()).hexdigest(), 16)
        lines.append(
            {
                **item.post.to_json(),
                "city": item.post.city or DEMO_CITIES[digest % len(DEMO_CITIES)],
                "created_at": (base + timedelta(hours=digest % (24 * 365))).isoformat(),
            }
        )
    write_text_atomic(target, "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
    return target


def index_demo_posts(container: ApiContainer, posts_file: Path) -> DemoIndexReport:
    """Indexes the posts of `posts_file` that the backend lacks, with a progress bar."""
    from jointspace.ingest.validate import ValidationLimits, validate_post

    settings = container.settings
    limits = ValidationLimits.from_settings(settings)
    with posts_file.open(encoding="utf-8") as handle:
        posts = [
            validate_post(json.loads(line), posts_file.parent, limits, default_source="demo")
            for line in handle
            if line.strip()
        ]
    present = container.backend.get_many([p.id for p in posts], with_vector=False)
    missing = [p for p in posts if p.id not in present]
    # The same ingest run as `jointspace ingest`; in-process (the demo runs without a broker).
    summary = container.ingestion.run(PostsSource(missing, "demo"), confirm_searchable=False, progress=bool(missing))
    container.backend.refresh()
    return DemoIndexReport(posts=len(posts), added=len(summary.settled_ids), failed=dict(summary.dead))
