"""The capped doubling backoff that retries wait by: a batch whose backend is unavailable
(workers/distributor.py, in-process) and a webhook that failed (alerts/webhooks.py)."""

from __future__ import annotations


def backoff_s(failures: int, cap_s: float) -> float:
    """1, 2, 4, ... seconds after the 1st, 2nd, 3rd failure, at most `cap_s`."""
    return float(min(cap_s, 2 ** max(0, failures - 1)))
