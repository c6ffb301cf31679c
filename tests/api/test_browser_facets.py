"""The page's facets, trend chart and sort control in Debian's chromium (Playwright), and its
accessibility: axe-core, injected from tests/api/node_modules (scripts/setup.sh installs it with
`npm ci`), must find no serious or critical violation at desktop and phone widths.

The server and page fixtures are tests/api/conftest.py's (a server of this module's own).
"""

from __future__ import annotations

import math
from datetime import datetime

import pytest

from tests.api.browser_support import DESKTOP, PHONE, serious_violations, shot
from tests.api.corpus import Corpus

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGE_K = 24  # the page's k (api/static/app.js)


def search(page, expression: str) -> None:
    page.fill("#q", expression)
    page.press("#q", "Enter")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('result')")


def test_page_passes_axe_at_desktop_and_phone_widths(page) -> None:
    assert serious_violations(page) == []  # the empty page, as a visitor first sees it
    search(page, "dog")
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        page.wait_for_timeout(200)  # let the layout settle before axe measures contrast
        assert serious_violations(page) == [], name
    page.set_viewport_size(DESKTOP)
    page.fill("#q", "dog+(park")
    page.press("#q", "Enter")
    page.wait_for_selector("#query-error:not([hidden])")
    assert serious_violations(page) == []  # the error state
    search(page, "park")
    page.locator("#grid .card").first.locator(".info").click()
    page.wait_for_selector("#detail[open]")
    page.wait_for_function("() => document.querySelectorAll('#detail-words .word').length > 0")
    assert serious_violations(page) == []  # the detail dialog
    page.keyboard.press("Escape")
    page.wait_for_selector("#detail[open]", state="detached")


def facet_counts(page, list_id: str) -> dict[str, int]:
    return dict(
        page.eval_on_selector_all(
            f"#{list_id} .facet-value",
            "els => els.map(e => [e.dataset.value, parseInt(e.querySelector('.facet-count').textContent)])",
        )
    )


def test_city_facet_filters_and_hashtag_facet_adds_a_filter(page, corpus: Corpus) -> None:
    page.set_viewport_size(DESKTOP)
    search(page, "dog")
    page.wait_for_selector("#facets:not([hidden]) #facet-city .facet-value")
    # No cut-off: the match set is the facet_depth (1,000) nearest, so here every post of the corpus.
    per_city: dict[str, int] = {}
    for post in corpus.posts:
        per_city[post["city"]] = per_city.get(post["city"], 0) + 1
    assert facet_counts(page, "facet-city") == per_city
    assert "30 nearest posts" in page.inner_text("#facets-summary")
    shot(page, "11-facets")

    page.locator('#facet-city .facet-value[data-value="tokyo"]').click()
    page.wait_for_function(
        "() => { const c = [...document.querySelectorAll('#grid .card .city')];"
        " return c.length > 0 && c.every(e => e.textContent === 'tokyo') }"
    )
    page.wait_for_function(
        "() => document.querySelector('#facet-city .facet-value[data-value=\"tokyo\"]')"
        "?.getAttribute('aria-pressed') === 'true'"
    )
    assert page.input_value("#city") == "tokyo" and "city=tokyo" in page.url
    assert facet_counts(page, "facet-city") == {"tokyo": per_city["tokyo"]}
    page.locator('#facet-city .facet-value[data-value="tokyo"]').click()  # a second click clears it
    page.wait_for_function("() => document.querySelector('#city').value === ''")
    page.wait_for_function("() => document.querySelectorAll('#facet-city .facet-value').length === 3")

    tag = page.eval_on_selector("#facet-hashtags .facet-value", "e => e.dataset.value")
    tagged = sum(1 for p in corpus.posts if tag in {t.lower() for t in p["hashtags"]})
    page.locator(f'#facet-hashtags .facet-value[data-value="{tag}"]').click()
    page.wait_for_selector(f'#chips .chip.filter[data-term="tag:{tag}"]')
    # The grid shows what the API answers for that query: every tagged post, less the near-duplicates
    # collapsed into a card (how many depends on the bundle's geometry, so the API is asked).
    base = page.url.split("?")[0].rstrip("/")
    answer = page.request.get(f"{base}/search", params={"q": f"dog tag:{tag}", "k": "24"}).json()
    cards = len(answer["hits"])
    assert 1 <= cards <= tagged and all(tag in {t.lower() for t in h["hashtags"]} for h in answer["hits"])
    page.wait_for_function("n => document.querySelectorAll('#grid .card').length === n", arg=cards)
    assert page.input_value("#q") == f"dog tag:{tag}"
    page.wait_for_function(
        "t => document.querySelector(`#facet-hashtags .facet-value[data-value=\"${t}\"]`)"
        "?.getAttribute('aria-pressed') === 'true'",
        arg=tag,
    )
    assert facet_counts(page, "facet-hashtags")[tag] == tagged


def test_trend_chart_draws_a_line_per_city(page, corpus: Corpus) -> None:
    search(page, "park")
    page.wait_for_selector("#trend-chart svg polyline")
    cities = page.eval_on_selector_all("#trend-chart polyline", "els => els.map(e => e.dataset.city)")
    assert sorted(cities) == sorted({p["city"] for p in corpus.posts})
    legend = page.inner_text("#trend-legend")
    assert all(city in legend.lower() for city in cities)
    months = sorted({p["created_at"][:7] for p in corpus.posts})
    assert page.inner_text("#trend-chart .trend-axis").split()[0] == months[0]
    label = page.get_attribute("#trend-chart svg", "aria-label")
    assert label.startswith("Matching posts per month by city.")


def test_sort_newest_pages_through_every_post_once(page, corpus: Corpus) -> None:
    search(page, "dog")
    page.select_option("#sort", "newest")
    page.wait_for_function(
        "() => location.search.includes('sort=newest') && document.querySelector('#grid .card time')"
    )
    page.wait_for_selector("#more:not([hidden])")
    page.click("#more")
    page.wait_for_function("n => document.querySelectorAll('#grid .card').length === n", arg=len(corpus.posts))
    ids = page.eval_on_selector_all("#grid .card", "els => els.map(e => e.dataset.id)")
    expected = sorted(corpus.posts, key=lambda p: (-datetime.fromisoformat(p["created_at"]).timestamp(), p["id"]))
    assert ids == [p["id"] for p in expected]  # page 2 continues page 1: none twice, none missing
    assert page.locator("#more").is_hidden()
    shot(page, "12-newest")

    # A cut-off below the tenth best similarity (from the cards themselves: the bundle sets them).
    shown = sorted(page.eval_on_selector_all("#grid .card .score", "els => els.map(e => parseFloat(e.textContent))"))
    cut = round(math.floor(shown[-10] * 100) / 100, 2)
    page.fill("#min-score", f"{cut:g}")
    page.press("#min-score", "Enter")
    page.wait_for_function("c => location.search.includes(`min_score=${c}`)", arg=f"{cut:g}")
    page.wait_for_function(
        "c => document.querySelector('#facets-summary').textContent.includes(`at least ${c}`)", arg=f"{cut:.2f}"
    )
    scores = page.eval_on_selector_all("#grid .card .score", "els => els.map(e => parseFloat(e.textContent))")
    matching = int(page.inner_text("#facets-summary").split()[0])
    assert matching >= 10 and all(s >= cut for s in scores) and len(scores) == min(matching, PAGE_K)
    dates = page.eval_on_selector_all("#grid .card time", "els => els.map(e => e.getAttribute('datetime'))")
    assert dates == sorted(dates, reverse=True)
    page.fill("#min-score", "")
    page.press("#min-score", "Enter")
    page.select_option("#sort", "relevance")
    page.wait_for_function("() => !location.search.includes('sort=') && !location.search.includes('min_score')")


def test_keyword_mode_counts_its_text_matches(page) -> None:
    search(page, "dog")
    page.check('input[name="mode"][value="keyword"]', force=True)
    page.wait_for_function(
        "() => location.search.includes('mode=keyword')"
        " && document.querySelector('#facets-summary').textContent.includes('best text matches')"
    )
    summary = page.inner_text("#facets-summary")
    matching = int(summary.removeprefix("Counted over the ").split()[0])
    assert summary == f"Counted over the {matching} best text matches"
    assert sum(facet_counts(page, "facet-city").values()) == matching  # each post has one city
    # The cards are the API's keyword hits: the matches less near-duplicates collapsed into a card.
    base = page.url.split("?")[0].rstrip("/")
    answer = page.request.get(f"{base}/search", params={"q": "dog", "mode": "keyword", "k": "24"}).json()
    assert 1 <= len(answer["hits"]) <= matching
    page.wait_for_function("n => document.querySelectorAll('#grid .card').length === n", arg=len(answer["hits"]))
    assert page.locator("#trend-chart").is_hidden() and page.is_disabled("#min-score")
    assert serious_violations(page) == []
    page.check('input[name="mode"][value="semantic"]', force=True)
    page.wait_for_function("() => !location.search.includes('mode=')")
    page.wait_for_selector("#trend-chart svg")
    assert not page.is_disabled("#min-score")


def test_the_cut_off_can_be_auto(page) -> None:
    """`At least` takes `auto` (a cut-off from the query's own top scores), as `--min-score auto` and
    the API do, typed or from a shared URL (min_score=auto was dropped from the URL, and the number
    box could not hold it)."""
    base = page.url.split("?")[0]
    page.goto(f"{base}?q=dog&min_score=auto")
    page.wait_for_function("() => document.querySelector('#facets-summary').textContent.includes('(auto)')")
    assert page.input_value("#min-score") == "auto" and "min_score=auto" in page.url
    answer = page.request.get(f"{base.rstrip('/')}/search", params={"q": "dog", "min_score": "auto", "k": "24"}).json()
    cut = answer["explain"]["min_score_auto"]
    assert page.inner_text("#facets-summary").startswith(f"{len(answer['hits'])} posts at least {cut:.2f} similar")
    page.wait_for_function("n => document.querySelectorAll('#grid .card').length === n", arg=len(answer["hits"]))
    page.fill("#min-score", "")
    page.press("#min-score", "Enter")
    page.wait_for_function("() => !location.search.includes('min_score')")
    page.fill("#min-score", "Auto ")
    page.press("#min-score", "Enter")
    page.wait_for_function("() => location.search.includes('min_score=auto')")
    assert page.input_value("#min-score") == "auto"
    page.fill("#min-score", "")
    page.press("#min-score", "Enter")
    page.wait_for_function("() => !location.search.includes('min_score')")
