"""Reading what `jointspace data prepare` wrote: the loader other stages (training, evaluation, demo) use.

    from jointspace.datasets.prepared import load_items, split_of
    items = load_items(settings.data_dir, sources=["openclipart"], split="train")
    items[0].post.image      # absolute path of the prepared picture (PNG for drawings, JPEG for photos)
    items[0].post.caption    # title / description / monument text
    items[0].post.hashtags   # cleaned, lower-cased tags
    items[0].keywords        # label words for relevance judgements (title, tags and category words)
    items[0].category        # folder/category path inside the package, e.g. "animals/birds"
    items[0].split           # "train" | "val" | "test", 80/10/10, fixed by a hash of the id
    items[0].photo           # True for a real photograph (the scanner knows), False for drawings, icons, emoji

Items come back in file order (sources in the order asked, each sorted by id). Reading is cheap
(no images are opened). A source that was never prepared raises ConfigurationError naming the command.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jointspace.datasets.items import photo_split_of, split_of
from jointspace.datasets.scanners import SOURCE_NAMES

from jointspace.errors import ConfigurationError
from jointspace.records import Post

__all__ = [
    "Item",
    "load_items",
    "split_of",
    "photo_split_of",
    "photo_part",
    "SPLITS",
    "read_posts_file",
    "prepared_sources",
]

SPLITS = ("train", "val", "test")
POSTS = "posts.jsonl"


@dataclass(frozen=True, slots=True)
class Item:
    """A prepared post and the labels the evaluation needs."""

    post: Post
    category: str
    keywords: tuple[str, ...]
    split: str
    photo: bool = False  # a real photograph; lines written before the field existed read as False

    @property
    def id(self) -> str:
        return self.post.id


def _item(line: dict[str, Any], base: Path) -> Item:
    image = Path(line["image"])
    post = Post.from_json({**line, "image": str(image if image.is_absolute() else (base / image).resolve())})
    return Item(
        post=post,
        category=line.get("category", ""),
        keywords=tuple(line.get("keywords") or ()),
        split=line.get("split") or split_of(post.id),
        photo=bool(line.get("photo", False)),
    )


def read_posts_file(path: Path) -> list[Item]:
    """Items from one prepared JSONL file (a source's `posts.jsonl` or `all.jsonl`), images made absolute."""
    base = path.parent.resolve()
    with path.open(encoding="utf-8") as handle:
        return [_item(json.loads(line), base) for line in handle if line.strip()]


def prepared_sources(data_dir: Path) -> list[str]:
    """Names of the sources that have a `posts.jsonl` under `data_dir`: the project's own first, in
    their fixed order, then the ones `jointspace data import` wrote, by name."""
    own = [name for name in SOURCE_NAMES if (data_dir / name / POSTS).is_file()]
    imported = (
        sorted(p.name for p in data_dir.iterdir() if p.name not in SOURCE_NAMES and (p / POSTS).is_file())
        if data_dir.is_dir()
        else []
    )
    return own + imported


def load_items(
    data_dir: Path, sources: Iterable[str] | None = None, split: str | Sequence[str] | None = None
) -> list[Item]:
    """Prepared items of the given sources (default: every prepared source), optionally of one split
    or several. Raises ConfigurationError for an unknown split or a source that is not prepared."""
    data_dir = Path(data_dir)
    names = list(sources) if sources is not None else prepared_sources(data_dir)
    wanted = {split} if isinstance(split, str) else set(split) if split is not None else set(SPLITS)
    if not wanted <= set(SPLITS):
        raise ConfigurationError(f"unknown split {sorted(wanted - set(SPLITS))}; choose from {', '.join(SPLITS)}")
    items: list[Item] = []
    for name in names:
        path = data_dir / name / POSTS
        if not path.is_file():
            how = (
                f"run `jointspace data prepare --sources {name}`"
                if name in SOURCE_NAMES
                else f"import it with `jointspace data import FILE_OR_FOLDER --name {name}`"
            )
            raise ConfigurationError(f"source {name!r} is not prepared under {data_dir}; {how}")
        items.extend(item for item in read_posts_file(path) if item.split in wanted)
    return items


def photo_part(items: Iterable[Item], part: str) -> list[Item]:
    """The `train`, `val` or `test` part (by `photo_split_of`) of a photo source's items, whatever
    split each was prepared with."""
    if part not in SPLITS:
        raise ConfigurationError(f"unknown part {part!r}; choose from {', '.join(SPLITS)}")
    return [it for it in items if photo_split_of(it.post.id) == part]
