"""The outage recovery's bookkeeping on a real Redis (the whole path, a node killed and restarted
under real workers, is in test_worker_faults.py): it reads the dead letters only when a failing
task has marked them, sends back only the outage letters, and clears the mark only when nothing
new was marked meanwhile."""

from __future__ import annotations

import uuid
from typing import Any

import redis
from jointspace.workers.dead_letters import DeadLetter, open_dead_letters
from jointspace.workers.outage import OutageRecovery, mark_pending, outage_reason

from jointspace.settings import Settings


def _letter(key: str, stage: str, reason: str) -> DeadLetter:
    return DeadLetter(key=key, stage=stage, reason=reason, post={"id": key, "image": f"/x/{key}.png"})


def test_only_marked_outage_letters_go_back_and_a_new_mark_survives(redis_url: str, tmp_path) -> None:
    settings = Settings(home=tmp_path, broker_url=redis_url, dead_letter_key=f"test:dl:{uuid.uuid4().hex[:8]}")
    client = redis.Redis.from_url(redis_url)
    sent: list[list[dict[str, Any]]] = []
    recovery = OutageRecovery(settings, client, sent.append, answers=lambda: True)
    store = open_dead_letters(settings)
    try:
        outage = [_letter(f"o{i}", "write", outage_reason(10, ConnectionError("refused"))) for i in range(5)]
        store.put([*outage, _letter("broken", "decode", "not an image")])
        assert recovery.run() == 0 and not sent  # unmarked: nothing is read, nothing sent

        mark_pending(settings)
        away = OutageRecovery(settings, client, sent.append, answers=lambda: False)
        assert away.run() == 0 and not sent  # the backend still away: the letters and the mark stay

        def send_and_mark_again(posts: list[dict[str, Any]]) -> None:
            sent.append(posts)
            mark_pending(settings)  # another batch failed meanwhile

        again = OutageRecovery(settings, client, send_and_mark_again, answers=lambda: True)
        assert again.run() == 5
        assert sorted(p["id"] for batch in sent for p in batch) == [f"o{i}" for i in range(5)]
        assert [letter.key for letter in store.list()] == ["broken"]
        assert client.get(f"{settings.dead_letter_key}:outage-pending") is not None  # the new mark kept

        sent.clear()
        assert recovery.run() == 0 and not sent  # looked once more: nothing left to send
        assert client.get(f"{settings.dead_letter_key}:outage-pending") is None
        assert [letter.key for letter in store.list()] == ["broken"]
    finally:
        store.purge()
        store.close()
        client.delete(f"{settings.dead_letter_key}:outage-pending")
        client.close()
