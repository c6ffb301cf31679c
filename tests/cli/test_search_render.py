"""What `jointspace search` prints for a page: the columns a sort needs, and why a page is empty."""

from __future__ import annotations

from datetime import UTC, datetime

from jointspace.query.service import SearchResult

from jointspace.cli.search import render_text
from jointspace.records import Hit, Post


def _result(hits: list[Hit], sort: str = "relevance", **explain: object) -> SearchResult:
    base = {"mode": "semantic", "parsed": "beach", "filters": {}, "timings_ms": {"total": 1.0}}
    return SearchResult(hits, base | explain, page=1, k=5, total=len(hits), has_more=False, sort=sort)


def _hit(post_id: str, when: datetime | None) -> Hit:
    return Hit(Post(id=post_id, image="x.png", caption="a day at the beach", city="nice", created_at=when), 0.5)


def test_newest_first_shows_when_each_post_was_posted() -> None:
    text = render_text(_result([_hit("p2", datetime(2018, 2, 1, 9, 30, tzinfo=UTC)), _hit("p1", None)], sort="newest"))
    header, first, second = text.splitlines()[:3]
    assert "posted" in header
    assert "2018-02-01 09:30" in first and "nice" in first
    assert first.index("nice") == second.index("nice")  # a post without a time keeps the columns
    assert "posted" not in render_text(_result([_hit("p2", None)])).splitlines()[0]


def test_an_empty_page_under_an_automatic_cut_off_says_why() -> None:
    text = render_text(_result([], min_score="auto", min_score_auto=0.487))
    assert text.splitlines()[0] == "no results"
    assert "0.487" in text and "nothing stood out" in text
    shown = render_text(_result([_hit("p1", None)], min_score="auto", min_score_auto=0.4))
    assert "min score  auto: 0.400" in shown
    assert "stood out" not in render_text(_result([]))  # no cut-off asked: nothing to explain


def test_ids_are_printed_in_full_to_be_used_as_img_terms() -> None:
    """The id column is what `[img:ID]` takes in the next query: never shortened (the demo's
    `scratch-62aed3a26f1564da` printed as `scratch-62aed…`), and the columns after it stay aligned."""
    long_id, short_id = "scratch-62aed3a26f1564da", "p1"
    header, first, second = render_text(_result([_hit(long_id, None), _hit(short_id, None)])).splitlines()[:3]
    assert f" {long_id} " in first and "…" not in first
    assert header.index("city") == first.index("nice") == second.index("nice")
