"""The capped doubling backoff that retries wait by: a batch whose backend is unavailable
(workers/distributor.py, in-process; workers/tasks.py, Celery, with `equal_jitter`) and a webhook
that failed (alerts/webhooks.py)."""

from __future__ import annotations

import random


def backoff_s(failures: int, cap_s: float) -> float:
    """1, 2, 4, ... seconds after the 1st, 2nd, 3rd failure, at most `cap_s`."""
    return float(min(cap_s, 2 ** max(0, failures - 1)))


def equal_jitter(wait_s: float) -> float:
    """Between half of `wait_s` and all of it: the random half spreads apart the retries of batches
    that failed together, the fixed half keeps the sum of a retry schedule from collapsing (full
    jitter, a draw from 0 up, can make ten retries of a capped doubling last seconds)."""
    return wait_s / 2 + random.uniform(0, wait_s / 2)
