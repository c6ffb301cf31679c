"""Posts already validated (the API's request, the demo's corpus) as a source, so that they take
the same `IngestRun` as a file or a stream. Not a registered plugin: nothing names it by a target."""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence

from jointspace.ingest.sources.base import SourceItem

from jointspace.records import Post


class PostsSource:
    """Yields `posts` in order; item `i` has the token `i` and the origin `<name>#i`. Acks are
    nothing to remember: the caller holds the posts."""

    def __init__(self, posts: Sequence[Post], name: str) -> None:
        self.posts = list(posts)
        self.name = name

    def __iter__(self) -> Iterator[SourceItem]:
        for index, post in enumerate(self.posts):
            yield SourceItem(f"{self.name}#{index}", index, post=post, raw=post.to_json())

    def ack(self, tokens: Sequence[Hashable]) -> None:
        pass

    def close(self) -> None:
        pass
