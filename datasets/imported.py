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

from tqdm import tqdm

from jointspace.datasets.items import split_of
from jointspace.datasets.prepare import POSTS, write_jsonl
from jointspace.datasets.sources import SOURCE_NAMES
from jointspace.datasets.text import content_words, unique
from jointspace.errors import ConfigurationError
from jointspace.ingest.sources.base import SourceItem
from jointspace.ingest.validate import InvalidPost, resolve_image

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


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise ConfigurationError(f"source name {name!r}: use lower-case letters, digits, '-' and '_' "
                                 f"(at most 64, starting with a letter or digit)")
    if name in RESERVED:
        raise ConfigurationError(f"source name {name!r} is taken by the project's own data; choose another")
    return name


def import_posts(items: Iterable[SourceItem], name: str, data_dir: Path, limit: int | None = None,
                 progress: bool = True) -> ImportReport:
    """Write the valid posts of `items` as source `name`; every refused one is reported, none is lost
    silently. Replaces an earlier import of the same name in one rename."""
    out_dir = data_dir / check_name(name)
    report = ImportReport(name, out_dir / POSTS)
    lines: list[dict[str, object]] = []
    seen: set[str] = set()
    for item in tqdm(items, desc=f"import {name}", unit="post", disable=not progress):
        if limit is not None and report.imported >= limit:
            break
        post = item.post
        if post is None:
            report.skipped[item.origin] = str(item.error)
            continue
        if post.id in seen:
            report.skipped[item.origin] = f"duplicate id {post.id!r} (the first one was kept)"
            continue
        try:
            image = resolve_image(post.image, Path(item.base_dir) if item.base_dir else None)
        except InvalidPost as exc:
            report.skipped[item.origin] = str(exc)
            continue
        if not image.is_file():
            report.skipped[item.origin] = f"image {image} not found"
            continue
        seen.add(post.id)
        split = split_of(post.id)
        lines.append({**post.to_json(), "image": str(image), "source": name,
                      "category": (post.city or "").lower(),
                      "keywords": list(unique(content_words(" ".join([post.caption, *post.hashtags])))),
                      "split": split})
        report.imported += 1
        report.splits[split] += 1
    if not lines:
        raise ConfigurationError(f"no valid post to import ({len(report.skipped)} refused"
                                 + (f"; first: {next(iter(report.skipped.items()))}" if report.skipped else "")
                                 + ")")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(report.path, lines)
    return report
