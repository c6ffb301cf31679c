"""A user's own posts as a data source: `jointspace data import` turns a JSONL file or an
InstaCities1M folder into `<data_dir>/<name>/posts.jsonl`, which `jointspace train --sources <name>`
and `jointspace eval` read like any prepared source.

Images stay where they are (InstaCities1M is a million files): the posts keep absolute paths.
Label words for training targets and evaluation are the caption's and hashtags' content words;
the category is the city (InstaCities1M's own grouping), so image → image P@10 measures cities.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from jointspace.datasets.items import split_of
from jointspace.datasets.prepare import POSTS, write_jsonl
from jointspace.datasets.scanners import SOURCE_NAMES
from jointspace.datasets.text import content_words, unique
from jointspace.ingest.sources.base import SourceItem
from jointspace.ingest.validate import InvalidPost, resolve_image
from tqdm import tqdm

from jointspace.errors import ConfigurationError

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# Names the data folder or the training options already use for something else.
RESERVED = frozenset({*SOURCE_NAMES, "photos", "demo", "packages"})


@dataclass
class ImportReport:
    name: str
    path: Path
    imported: int = 0
    splits: dict[str, int] = field(default_factory=lambda: {"train": 0, "val": 0, "test": 0})
    skipped: dict[str, str] = field(default_factory=dict)  # origin → reason
    duplicates: int = 0  # lines replaced by a later one with the same id (also among `skipped`)


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise ConfigurationError(
            f"source name {name!r}: use lower-case letters, digits, '-' and '_' "
            f"(at most 64, starting with a letter or digit)"
        )
    if name in RESERVED:
        raise ConfigurationError(f"source name {name!r} is taken by the project's own data; choose another")
    return name


def import_posts(
    items: Iterable[SourceItem], name: str, data_dir: Path, limit: int | None = None, progress: bool = True
) -> ImportReport:
    """Write the valid posts of `items` as source `name`; every refused one is reported, none is lost
    silently. Replaces an earlier import of the same name in one rename."""
    out_dir = data_dir / check_name(name)
    report = ImportReport(name, out_dir / POSTS)
    # id → (origin, line). The rule for an id given twice is ingest's: the last copy wins (a
    # later line is a newer version); the earlier one is reported, so imported + skipped = read.
    lines: dict[str, tuple[str, dict[str, object]]] = {}
    for item in tqdm(items, desc=f"import {name}", unit="post", disable=not progress):
        post = item.post
        if limit is not None and len(lines) >= limit and (post is None or post.id not in lines):
            break
        if post is None:
            report.skipped[item.origin] = str(item.error)
            continue
        try:
            image = resolve_image(post.image, Path(item.base_dir) if item.base_dir else None)
        except InvalidPost as exc:
            report.skipped[item.origin] = str(exc)
            continue
        if not image.is_file():
            report.skipped[item.origin] = f"image {image} not found"
            continue
        if post.id in lines:
            earlier = lines.pop(post.id)[0]
            report.skipped[earlier] = f"duplicate id {post.id!r}: replaced by {item.origin} (the last copy wins)"
            report.duplicates += 1
        lines[post.id] = (
            item.origin,
            {
                **post.to_json(),
                "image": str(image),
                "source": name,
                "category": (post.city or "").lower(),
                "keywords": list(unique(content_words(" ".join([post.caption, *post.hashtags])))),
                "split": split_of(post.id),
            },
        )
    for _, line in lines.values():
        report.splits[str(line["split"])] += 1
    report.imported = len(lines)
    if not lines:
        raise ConfigurationError(
            f"no valid post to import ({len(report.skipped)} refused"
            + (f"; first: {next(iter(report.skipped.items()))}" if report.skipped else "")
            + ")"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(report.path, [line for _, line in lines.values()])
    return report
