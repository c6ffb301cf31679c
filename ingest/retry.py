"""Dead letters back through the pipeline: each letter becomes a source item again."""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path

from jointspace.ingest.sources.base import SourceItem, json_line_reason
from jointspace.ingest.validate import InvalidPost, ValidationLimits, validate_post
from jointspace.workers.dead_letters import DeadLetter


class DeadLetterSource:
    """Re-validates each letter's original post (so a fixed image path or file is picked up).

    `moved` lists letters whose post now has an id other than the letter's key (a line refused
    before it had an id): once the run settles, those keys are stale and the caller removes them.
    A letter keyed by its post id needs nothing: the pipeline removes or rewrites it.
    """

    name = "dead-letters"

    def __init__(self, letters: Sequence[DeadLetter], limits: ValidationLimits) -> None:
        self.letters = list(letters)
        self.limits = limits
        self.moved: list[str] = []

    def __iter__(self) -> Iterator[SourceItem]:
        for letter in self.letters:
            origin = letter.origin or letter.key
            base = Path(letter.base_dir) if letter.base_dir else None
            raw = letter.post if letter.post is not None else {}
            if "text" in raw and len(raw) == 1:  # the line itself, as read: it was not a JSON object
                text = raw["text"] if isinstance(raw["text"], str) else json.dumps(raw["text"])
                reason = json_line_reason(text)
                if reason is not None:  # not JSON: nothing to retry with
                    yield SourceItem(origin, letter.key, error=InvalidPost("json", reason, source=origin), raw=raw)
                    continue
                raw = json.loads(text)  # JSON but no object (`[1, 2]`): validation says so again
            try:
                post = validate_post(raw, base, self.limits)
            except InvalidPost as exc:
                yield SourceItem(origin, letter.key, error=exc, raw=raw, base_dir=letter.base_dir)
                continue
            if post.id != letter.key:
                self.moved.append(letter.key)
            yield SourceItem(origin, letter.key, post=post, raw=raw, base_dir=letter.base_dir)

    def ack(self, tokens: Sequence[Hashable]) -> None:
        """The store itself is updated by the pipeline and by the caller."""

    def close(self) -> None:
        pass
