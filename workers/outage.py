"""Posts dead-lettered while the search backend was away go back to the queue once it answers.

A batch rides out about 150 s of an unreachable backend (`task_max_retries` with backoff); then its
posts become dead letters at the `write` stage with a reason that starts with OUTAGE_REASON. A node
restart, an upgrade or a longer network cut outlasts that, and a stream keeps flowing meanwhile, so
a person would have to notice and run `jointspace dead-letters retry`. Instead every worker looks
whenever its heart sweeps (every 3 heartbeats, `liveness.Heart`): when such letters wait and the
backend answers, one worker (a Redis lock) sends their posts back to the queue in batches and then
removes the letters. The look is one GET of a counter the failing task bumps when it writes such
letters (`mark_pending`), not a read of every dead letter: a stream's broken pictures may pile up
by the ten thousand. A batch that meets another outage is dead-lettered again: nothing is lost and
nothing is indexed twice (writes are keyed by post id). Other dead letters (a broken image, a
document the backend refused) stay for a person to look at.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from jointspace.workers.dead_letters import DeadLetter, open_dead_letters

from jointspace.settings import Settings

log = logging.getLogger(__name__)

OUTAGE_REASON = "backend unavailable"
# Compare-and-delete: the pending mark is cleared only if no outage letter was written since it was read.
_CLEAR_IF_UNCHANGED = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def _pending_key(settings: Settings) -> str:
    return f"{settings.dead_letter_key}:outage-pending"


def _lock_key(settings: Settings) -> str:
    return f"{settings.dead_letter_key}:outage-requeue"


def mark_pending(settings: Settings) -> None:
    """Tells the workers' sweeps that outage letters wait (after a failing task wrote some)."""
    if not settings.broker_url:
        return
    import redis

    with redis.Redis.from_url(settings.broker_url) as client:
        client.incr(_pending_key(settings))


def outage_reason(retries: int | None, exc: BaseException) -> str:
    """The reason of a batch that gave up on an unreachable backend (what `is_outage` recognises)."""
    after = f" after {retries} retries" if retries is not None else ""
    return f"{OUTAGE_REASON}{after}: {type(exc).__name__}: {exc}"


def is_outage(letter: DeadLetter) -> bool:
    return letter.stage == "write" and letter.reason.startswith(OUTAGE_REASON) and letter.post is not None


def backend_answers(settings: Settings) -> bool:
    """Whether the search backend takes requests now (the embedded store is never away)."""
    if not settings.es_url:
        return True
    from jointspace.es_mappings.client import connect

    from jointspace.errors import BackendUnavailableError

    try:
        connect(settings).close()
    except BackendUnavailableError:
        return False
    return True


class OutageRecovery:
    """Requeues outage dead letters when the backend answers; `send_batch` hands one batch of post
    JSON to the queue (the worker's Celery app)."""

    def __init__(
        self,
        settings: Settings,
        redis_client: Any,
        send_batch: Callable[[list[dict[str, Any]]], None],
        answers: Callable[[], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.redis = redis_client
        self.send_batch = send_batch
        self.answers = answers or (lambda: backend_answers(settings))

    def run(self) -> int:
        """Posts sent back to the queue (0 when there was nothing to do, or another worker does it)."""
        pending = _pending_key(self.settings)
        mark = self.redis.get(pending)
        if mark is None or not self.answers():
            return 0
        # The lock outlives one pass (a sweep is every 3 heartbeats): two workers never send the
        # same letters twice over, and one that dies holding it frees it within a minute or two.
        lock = _lock_key(self.settings)
        if not self.redis.set(lock, "1", nx=True, ex=max(60, int(6 * self.settings.worker_heartbeat_s))):
            return 0
        store = open_dead_letters(self.settings)
        try:
            letters = [letter for letter in store.list() if is_outage(letter)]
            for chunk in _chunks(letters, self.settings.batch_size):
                # Sent first, removed after: a crash in between leaves the letter (and the mark), and
                # the post is sent again later (harmless), never lost. The requeued batch cannot fail
                # back into the dead letters before this removal: it would have to exhaust its retries.
                self.send_batch([letter.post for letter in chunk if letter.post is not None])
                store.remove([letter.key for letter in chunk])
            self.redis.eval(_CLEAR_IF_UNCHANGED, 1, pending, mark)
        finally:
            store.close()
            self.redis.delete(lock)
        if not letters:
            return 0
        log.warning(
            "the backend answers again: sent %d post(s) dead-lettered while it was unavailable back to the queue",
            len(letters),
        )
        return len(letters)


def _chunks(letters: Sequence[DeadLetter], size: int) -> list[Sequence[DeadLetter]]:
    return [letters[i : i + size] for i in range(0, len(letters), max(1, size))]
