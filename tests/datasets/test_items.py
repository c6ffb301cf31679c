from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

from jointspace.datasets.items import created_at_of, post_id, split_of


def test_split_is_deterministic_and_about_80_10_10() -> None:
    ids = [post_id("openclipart", f"animals/cat_{i}.svg") for i in range(20_000)]
    counts = Counter(split_of(i) for i in ids)
    assert set(counts) == {"train", "val", "test"}
    assert abs(counts["train"] / len(ids) - 0.8) < 0.02
    assert abs(counts["val"] / len(ids) - 0.1) < 0.02
    assert abs(counts["test"] / len(ids) - 0.1) < 0.02
    assert [split_of(i) for i in ids[:200]] == [split_of(i) for i in ids[:200]]
    # Pinned values: the split must not change between versions, or evaluations stop being comparable.
    assert split_of("tuxpaint-001ce2c561a49631") == "train"
    assert post_id("tuxpaint", "symbols/shapes/scream") == post_id("tuxpaint", "symbols/shapes/scream")
    assert post_id("tuxpaint", "a") != post_id("openclipart", "a")


def test_created_at_is_plausible_and_fixed_by_the_id() -> None:
    first = created_at_of("tuxpaint-001ce2c561a49631")
    assert first == created_at_of("tuxpaint-001ce2c561a49631")
    times = {created_at_of(f"x-{i}") for i in range(500)}
    assert len(times) > 490
    assert all(datetime(2019, 1, 1, tzinfo=timezone.utc) <= t < datetime(2022, 1, 1, tzinfo=timezone.utc)
               for t in times)
