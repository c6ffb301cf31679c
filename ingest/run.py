"""An ingest run: read a source, batch, hand batches to the distributor, settle their outcomes,
acknowledge the source, and say what happened. The same loop serves files, folders and streams."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from jointspace.ingest.sources.base import Source, SourceItem
from jointspace.workers.dead_letters import DeadLetter, DeadLetterStore
from jointspace.workers.distributor import STALL_CHECK_S, Distributor, Ticket
from tqdm import tqdm

from jointspace.errors import ServiceUnavailableError
from jointspace.protocols import SearchBackend
from jointspace.records import Post

log = logging.getLogger(__name__)

_RECENT_IDS = 100_000  # in-run duplicate detection window; older repeats are caught by the worker


@dataclass
class IngestSummary:
    read: int = 0
    indexed: int = 0
    unchanged: int = 0  # already indexed with the same content (a re-run, a re-sent post)
    duplicates: int = 0  # the same post more than once in this run
    withheld: int = 0  # taken down earlier (`jointspace delete`): left out, not indexed
    enqueued: int = 0
    dead: dict[str, str] = field(default_factory=dict)  # key (id or file:line) → "stage: reason"
    stage_seconds: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    searchable: bool | None = None  # None: not waited for
    # Elasticsearch after a large run (es_merge_after_posts): the merge started on the node, as
    # {"index", "segments" (before), "task"}; None when none was started.
    merge: dict[str, Any] | None = None
    # Which posts, for callers that answer per post (POST /posts); not in `to_json`.
    settled_ids: list[str] = field(default_factory=list)  # indexed or unchanged, in settling order
    unchanged_ids: list[str] = field(default_factory=list)
    withheld_ids: list[str] = field(default_factory=list)
    queued_ids: list[str] = field(default_factory=list)  # handed to the workers, not followed (no wait)

    def reasons(self) -> Counter[str]:
        """Dead letters grouped by kind: stage and reason without the details (paths, sizes)."""

        def kind(reason: str) -> str:
            parts = reason.split(": ")
            return ": ".join(parts[:3] if parts[0] == "validate" else parts[:2]).split(" (")[0]

        return Counter(kind(r) for r in self.dead.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "indexed": self.indexed,
            "unchanged": self.unchanged,
            "duplicates": self.duplicates,
            "withheld": self.withheld,
            "enqueued": self.enqueued,
            "dead_lettered": len(self.dead),
            "dead": self.dead,
            "stage_seconds": self.stage_seconds,
            "seconds": round(self.seconds, 3),
            "posts_per_second": round(self.read / self.seconds, 2) if self.seconds else None,
            "searchable": self.searchable,
            "merge": self.merge,
        }


@dataclass
class _InFlight:
    ticket: Ticket
    tokens: list[Hashable]
    followers: dict[str, list[Hashable]]  # id → tokens of in-run duplicates settled with it


class IngestRun:
    """Drives one run. `wait=False` with a broker returns once everything is queued."""

    def __init__(
        self,
        source: Source,
        distributor: Distributor,
        dead_letters: DeadLetterStore,
        *,
        batch_size: int,
        wait: bool = True,
        backend: SearchBackend | None = None,
        max_in_flight: int = 64,
        timeout_s: float = 3600.0,
        progress: bool = True,
    ) -> None:
        self.source = source
        self.distributor = distributor
        self.dead_letters = dead_letters
        self.batch_size = batch_size
        self.wait = wait
        self.backend = backend
        self.max_in_flight = max_in_flight
        self.timeout_s = timeout_s
        self._stall_said: str | None = None  # the stall last seen (said once; again after it ended)
        self.summary = IngestSummary()
        self._batch: list[tuple[Post, Hashable]] = []
        self._recent: OrderedDict[str, Post] = OrderedDict()
        self._followers: dict[str, list[Hashable]] = {}
        self._in_flight: deque[_InFlight] = deque()
        self._indexed_ids: list[str] = []
        self._bar = tqdm(unit="post", desc="ingest", disable=not progress, dynamic_ncols=True)

    def run(self) -> IngestSummary:
        started = time.perf_counter()
        try:
            for item in self.source:
                if item is None:
                    self._flush()
                    self._settle(block=False)
                else:
                    self._take(item)
            self._flush()
            self._settle(block=self.wait, final=True)
            if self.wait and self.backend is not None:
                self.summary.searchable = self._wait_searchable()
        except ServiceUnavailableError as exc:  # the broker or the backend went away: say what was done
            if exc.done is None:
                exc.done = self.summary
            raise
        finally:
            self.summary.seconds = time.perf_counter() - started
            self._bar.close()
        return self.summary

    def _take(self, item: SourceItem) -> None:
        self.summary.read += 1
        if item.error is not None or item.post is None:
            self._dead_letter_invalid(item)
            self.source.ack([item.token])
            return
        post = item.post
        # The rule for an id given twice (`data import` follows it too): the last copy wins, as a
        # later upsert would; a copy that never needs writing is counted in `duplicates`, so that
        # read = indexed + unchanged + duplicates + dead-lettered.
        if self._recent.get(post.id) == post:  # the same post again: nothing to write
            self.summary.duplicates += 1
            self._bar.update(1)
            if post.id in self._followers:  # the first copy is still on its way: ack together
                self._followers[post.id].append(item.token)
            else:
                self.source.ack([item.token])
            return
        if post.id in self._recent and self._replace_in_batch(post, item.token):
            return
        self._recent[post.id] = post
        self._recent.move_to_end(post.id)
        if len(self._recent) > _RECENT_IDS:
            self._recent.popitem(last=False)
        self._followers.setdefault(post.id, [])
        self._batch.append((post, item.token))
        if len(self._batch) >= self.batch_size:
            self._flush()
            self._settle(block=False)

    def _replace_in_batch(self, post: Post, token: Hashable) -> bool:
        """A changed copy of a post still waiting in the unsent batch takes its place there (the
        earlier copy is a duplicate, acknowledged with the new one). False when the earlier copy
        was already sent: then the new one follows it as an update."""
        for index, (queued, queued_token) in enumerate(self._batch):
            if queued.id == post.id:
                self._batch[index] = (post, token)
                self._followers.setdefault(post.id, []).append(queued_token)
                self._recent[post.id] = post
                self._recent.move_to_end(post.id)
                self.summary.duplicates += 1
                self._bar.update(1)
                return True
        return False

    def _dead_letter_invalid(self, item: SourceItem) -> None:
        error = item.error
        raw_id = item.raw.get("id") if isinstance(item.raw, dict) else None
        key = str(raw_id) if isinstance(raw_id, (str, int)) and str(raw_id).strip() else item.origin
        reason = f"{error.field}: {error.reason}" if error else "invalid post"
        # A line that was not JSON keeps its text; JSON that was no object keeps its JSON text, so
        # that a retry finds the same reason.
        if isinstance(item.raw, dict):
            post = item.raw
        elif error is not None and error.field == "json":
            post = {"text": item.raw}
        else:
            post = {"text": json.dumps(item.raw)}
        self.dead_letters.put(
            [
                DeadLetter(
                    key=key, stage="validate", reason=reason, post=post, origin=item.origin, base_dir=item.base_dir
                )
            ]
        )
        self.summary.dead[key] = f"validate: {reason}"
        self._bar.update(1)
        self._bar.set_postfix(failed=len(self.summary.dead))

    def _flush(self) -> None:
        if not self._batch:
            return
        posts = [p for p, _ in self._batch]
        tokens = [t for _, t in self._batch]
        self._batch = []
        followers = {p.id: self._followers.pop(p.id, []) for p in posts}
        # A changed copy of a post whose earlier copy is still in flight waits for that batch to be
        # written: with several workers (or a retried batch) the older copy could land last, and
        # the rule is that the last copy wins.
        ids = set(followers)
        while self._in_flight and any(ids.intersection(f.followers) for f in self._in_flight):
            self._settle_one(self._in_flight.popleft())
        while len(self._in_flight) >= self.max_in_flight:
            self._settle_one(self._in_flight.popleft())
        ticket = self.distributor.submit_batch(posts, on_stall=self._say_stall)
        self.summary.enqueued += len(posts)
        if not self.wait and not ticket.ready():
            # Queued durably (late acks): that is as far as a no-wait run follows a batch.
            self.source.ack(tokens + [t for ts in followers.values() for t in ts])
            self.summary.queued_ids += [p.id for p in posts]
            self._bar.update(len(posts))
            return
        self._in_flight.append(_InFlight(ticket, tokens, followers))

    def _settle(self, block: bool, final: bool = False) -> None:
        deadline = time.monotonic() + self.timeout_s
        while self._in_flight:
            head = self._in_flight[0]
            if not (block or head.ticket.ready()):
                return
            self._in_flight.popleft()
            self._settle_one(head, timeout=max(1.0, deadline - time.monotonic()))

    def _settle_one(self, flight: _InFlight, timeout: float | None = None) -> None:
        outcome = self._wait_for(flight.ticket, timeout or self.timeout_s)
        self.summary.indexed += len(outcome.indexed)
        self.summary.unchanged += len(outcome.unchanged)
        self.summary.dead.update(outcome.dead)
        self._indexed_ids += outcome.indexed + outcome.unchanged
        self.summary.settled_ids += outcome.indexed + outcome.unchanged
        self.summary.unchanged_ids += outcome.unchanged
        self.summary.withheld += len(outcome.withheld)
        self.summary.withheld_ids += outcome.withheld
        for stage, seconds in outcome.seconds.items():
            self.summary.stage_seconds[stage] = self.summary.stage_seconds.get(stage, 0.0) + seconds
        # Only now, with every post of the batch indexed or dead-lettered, may the source forget them.
        self.source.ack(flight.tokens + [t for ts in flight.followers.values() for t in ts])
        self._bar.update(len(flight.tokens))
        if self.summary.dead:
            self._bar.set_postfix(failed=len(self.summary.dead))

    def _wait_for(self, ticket: Ticket, timeout_s: float) -> Any:
        """The ticket's outcome, looking every STALL_CHECK_S at why it may not come: with no live
        worker a run sat silent at 0 posts for up to an hour (INGEST_WAIT_TIMEOUT_S)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return ticket.outcome(timeout=max(0.1, min(STALL_CHECK_S, deadline - time.monotonic())))
            except TimeoutError:
                if time.monotonic() >= deadline:
                    raise
            self._say_stall(self.distributor.stall_reason())

    def _say_stall(self, reason: str | None) -> None:
        """Says a stall once, when it starts (again only after it ended), not at every look."""
        if reason and self._stall_said is None:
            tqdm.write(f"ingest: {reason}", file=sys.stderr)
        self._stall_said = reason

    def _wait_searchable(self, poll_s: float = 0.5) -> bool:
        """Refresh, then check every indexed id can be fetched (ES: a refreshed index is searchable)."""
        assert self.backend is not None
        deadline = time.monotonic() + self.timeout_s
        missing = list(dict.fromkeys(self._indexed_ids))
        while True:
            self.backend.refresh()
            still = []
            for chunk in _chunks(missing, 1000):
                found = self.backend.get_many(chunk, with_vector=False)
                still += [i for i in chunk if i not in found]
            missing = still
            if not missing:
                return True
            if time.monotonic() > deadline:
                log.error("%d indexed posts are still not searchable, e.g. %s", len(missing), missing[:5])
                return False
            time.sleep(poll_s)


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
