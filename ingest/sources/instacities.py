"""Posts from an InstaCities1M-style folder: `img_resized/<city>/<id>.jpg` (or `img/...`) beside
`captions/<city>/<id>.txt`. The city is the folder name; the id is the file name without suffix."""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any

from jointspace.ingest.sources.base import SourceItem
from jointspace.ingest.validate import InvalidPost, ValidationLimits, validate_post

from jointspace.errors import ConfigurationError
from jointspace.settings import Settings

IMAGE_FOLDERS = ("img_resized", "img")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


class InstaCitiesSource:
    name = "instacities"

    def __init__(self, target: str, settings: Settings, cities: Sequence[str] = ()) -> None:
        self.root = Path(target).expanduser().resolve()
        images = next((self.root / f for f in IMAGE_FOLDERS if (self.root / f).is_dir()), None)
        if images is None:
            raise ConfigurationError(
                f"{target} is not an InstaCities folder: it has neither {' nor '.join(f + '/' for f in IMAGE_FOLDERS)}"
            )
        self.images = images
        self.captions = self.root / "captions"
        self.cities = {c.lower() for c in cities}
        self.limits = ValidationLimits.from_settings(settings)

    def __iter__(self) -> Iterator[SourceItem]:
        for city_dir in sorted(p for p in self.images.iterdir() if p.is_dir()):
            if self.cities and city_dir.name.lower() not in self.cities:
                continue
            for image in sorted(p for p in city_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
                origin = f"{city_dir.name}/{image.name}"
                caption_file = self.captions / city_dir.name / f"{image.stem}.txt"
                raw = {
                    "id": image.stem,
                    "image": str(image),
                    "city": city_dir.name,
                    "source": "instacities",
                    # A photo without its caption file is still a post, with an empty caption.
                    "caption": caption_file.read_text(encoding="utf-8", errors="replace")
                    if caption_file.is_file()
                    else "",
                }
                try:
                    yield SourceItem(origin, origin, post=validate_post(raw, None, self.limits), raw=raw)
                except InvalidPost as exc:
                    yield SourceItem(origin, origin, error=InvalidPost(exc.field, exc.reason, source=origin), raw=raw)

    def ack(self, tokens: Sequence[Hashable]) -> None:
        """Files stay where they are: nothing to forget."""

    def close(self) -> None:
        pass


def instacities_source(target: str, settings: Settings, **options: Any) -> InstaCitiesSource:
    return InstaCitiesSource(target, settings, cities=options.get("cities") or ())
