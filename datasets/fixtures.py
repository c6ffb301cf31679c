"""Small real corpora for tests and the demo, built in seconds from the Debian packages.

`build_small_corpus` prepares a few dozen items (tuxpaint stamps by default: the smallest package
with one-line captions) and returns the combined JSONL. `build_instacities_fixture` lays the same
kind of pictures out as InstaCities1M does, for the reader of that layout.
Both block while packages are fetched (first call only: the .deb files are cached under
`$JOINTSPACE_HOME/cache/debs` and unpacked once under `$JOINTSPACE_HOME/data/packages`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jointspace.datasets.prepare import ALL_POSTS, cache_dir_of, prepare_source, write_combined
from jointspace.datasets.prepared import Item, read_posts_file
from PIL import Image

from jointspace.settings import Settings

# The ten cities of InstaCities1M, in its folder spelling.
INSTACITIES_CITIES = (
    "london",
    "newyork",
    "sydney",
    "losangeles",
    "chicago",
    "melbourne",
    "miami",
    "toronto",
    "singapore",
    "sanfrancisco",
)
# Tags that real InstaCities captions carry beside the content tags, and the odd emoji.
_FILLER_TAGS = ("travel", "instagood", "photooftheday", "love", "picoftheday", "igers", "art")
_EMOJI = ("", " ❤️", " 😍", "", " 🌞")


def _shared_dirs(settings: Settings) -> tuple[Path, Path]:
    return cache_dir_of(settings.home), settings.data_dir / "packages"


def build_small_corpus(
    out_dir: Path,
    n: int = 60,
    sources: Sequence[str] = ("tuxpaint",),
    size: int = 128,
    workers: int = 1,
    *,
    settings: Settings,
) -> Path:
    """Prepare about `n` items (split evenly over `sources`, a fixed spread over their categories)
    under `out_dir` exactly as `jointspace data prepare` would, and return `out_dir/all.jsonl`.
    Cached like `prepare`: a second call with the same arguments returns at once. The packages and
    their download cache are shared with the settings' home."""
    cache_dir, packages_dir = _shared_dirs(settings)
    per_source = max(1, -(-n // len(sources)))
    for name in sources:
        prepare_source(
            name, out_dir, cache_dir, size=size, limit=per_source, workers=workers, packages_dir=packages_dir
        )
    write_combined(out_dir)
    return out_dir / ALL_POSTS


@dataclass(frozen=True, slots=True)
class InstaCitiesPost:
    """What the fixture wrote for one post, for tests to compare a reader's output with."""

    city: str
    instagram_id: str
    image: Path
    caption_file: Path
    caption: str
    source_item: Item


def _instagram_id(post_id: str) -> str:
    # Instagram media ids are 19-digit numbers; derive one from the prepared id so it is stable.
    return str(10**18 + int(hashlib.sha1(post_id.encode()).hexdigest(), 16) % (9 * 10**18))


def instacities_caption(item: Item, city: str, index: int) -> str:
    """A caption in the InstaCities1M style: free text, then hashtags with the city among them."""
    tags = [*item.post.hashtags[:4], city, _FILLER_TAGS[index % len(_FILLER_TAGS)]]
    return f"{item.post.caption}{_EMOJI[index % len(_EMOJI)]} " + " ".join(f"#{t}" for t in dict.fromkeys(tags))


def build_instacities_fixture(
    out_dir: Path,
    n_per_city: int = 5,
    cities: Sequence[str] = ("london", "newyork", "sydney"),
    sources: Sequence[str] = ("tuxpaint",),
    image_folder: str = "img_resized",
    work_dir: Path | None = None,
    *,
    settings: Settings,
) -> list[InstaCitiesPost]:
    """Write `out_dir/<image_folder>/<city>/<id>.jpg` and `out_dir/captions/<city>/<id>.txt` (UTF-8,
    one caption per file, as InstaCities1M has them) from prepared items, dealt round-robin to the
    cities. Returns what was written; nothing else goes into `out_dir`. `work_dir` holds the small
    corpus (default: a sibling folder `<out_dir>-corpus`, so a reader of `out_dir` sees only the layout)."""
    unknown = [c for c in cities if not c.isalnum() or c != c.lower()]
    if unknown:
        raise ValueError(f"city folder names are lower-case letters and digits, got {unknown}")
    corpus = build_small_corpus(
        work_dir or out_dir.with_name(out_dir.name + "-corpus"),
        n=n_per_city * len(cities),
        sources=sources,
        settings=settings,
    )
    items = read_posts_file(corpus)[: n_per_city * len(cities)]
    written: list[InstaCitiesPost] = []
    for index, item in enumerate(items):
        city = cities[index % len(cities)]
        insta_id = _instagram_id(item.id)
        image_path = out_dir / image_folder / city / f"{insta_id}.jpg"
        caption_path = out_dir / "captions" / city / f"{insta_id}.txt"
        image_path.parent.mkdir(parents=True, exist_ok=True)
        caption_path.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(item.post.image) as image:
            image.convert("RGB").save(image_path, format="JPEG", quality=90)
        caption = instacities_caption(item, city, index)
        caption_path.write_text(caption, encoding="utf-8")
        written.append(InstaCitiesPost(city, insta_id, image_path, caption_path, caption, item))
    return written
