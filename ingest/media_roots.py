"""Records the folders of the pictures an ingest reads as allowed media roots, so that the page
shows a user's own pictures after `jointspace ingest ~/mydata/posts.jsonl`, with no setting.

A wrapper around any Source: it looks at each valid post's picture as it passes and records its
folder with the index (the backend's `add_media_roots`) before the post is indexed, so the picture
is servable as soon as the post is searchable. The rule for which folders qualify lives in
`jointspace.media_roots`.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path

from jointspace.ingest.sources.base import Source, SourceItem

from jointspace.media_roots import below_any, folder_to_record, ref_to_path, too_broad
from jointspace.protocols import MediaRootRegistry

log = logging.getLogger(__name__)


class RecordingSource:
    """Passes `source`'s items through unchanged; records new picture folders in `registry`.

    `fixed` are roots that are allowed anyway (the configured media root, uploads): folders below
    them are not recorded. Folders refused as too broad are collected in `refused`.
    """

    def __init__(self, source: Source, registry: MediaRootRegistry, fixed: Sequence[Path] = ()) -> None:
        self.source = source
        self.name = source.name
        self.registry = registry
        self.known = list(fixed) + [Path(p) for p in registry.media_roots()]
        self.recorded: list[str] = []
        self.refused: dict[str, str] = {}  # folder → why it was not recorded

    def __iter__(self) -> Iterator[SourceItem]:
        for item in self.source:
            if item is not None and item.post is not None:
                self._look_at(item.post.image)
            yield item

    def _look_at(self, image_ref: str) -> None:
        path = ref_to_path(image_ref)
        if path is None or not path.is_absolute() or below_any(path, self.known):
            return  # the common case: one more picture in a folder already allowed
        folder = folder_to_record(path)
        if folder is None:
            parent = str(path.resolve(strict=False).parent)
            why = too_broad(Path(parent))
            if why and parent not in self.refused:
                self.refused[parent] = why
                log.warning(
                    "pictures in %s will not be served: %s (add a narrower folder with "
                    "`jointspace media roots add DIR`)",
                    parent,
                    why,
                )
            return
        if below_any(folder, self.known):
            return
        self.recorded += self.registry.add_media_roots([str(folder)])
        self.known.append(folder)

    def ack(self, tokens: Sequence[Hashable]) -> None:
        self.source.ack(tokens)

    def close(self) -> None:
        self.source.close()
